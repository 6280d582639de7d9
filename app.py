"""Landing page of the Sequence Deep Learning Playground."""
from pathlib import Path

import streamlit as st

from playground.ui import PageState, setup_page, sidebar
from playground.ui.lessons import lesson_catalog

ROOT = Path(__file__).parent

setup_page("Home", "🧬")
state = PageState("home", [])
state.load()
sidebar(state)

st.title("🧬 Sequence Deep Learning Playground")
st.markdown(
    "Learn deep learning on **DNA and proteins** by playing with it: pick a data set and an architecture, "
    "tweak activation, layers, neurons and learning rate, press **▶ Play**, and watch a real PyTorch model "
    "learn — loss curves, predictions, CNN filters turned into sequence logos, attention maps and "
    "protein-language-model embeddings."
)

CARDS = [
    ("pages/1_Neural_Network_Basics.py", "🧠 Neural network basics",
     "TensorFlow Playground in PyTorch: toy data, neurons, activations, learning rates, the loss landscape, "
     "and the PyTorch code for every setting."),
    ("pages/2_DNA_CNN.py", "🧬 DNA & convolutional networks",
     "One-hot DNA, 1-D CNNs, and filters that turn into the logo of a planted JASPAR motif."),
    ("pages/3_Sequence_Models.py", "🔁 Sequence models & attention",
     "RNN, LSTM, GRU, Transformers and the hybrid CNN+Transformer on DNA and proteins; attention maps."),
    ("pages/4_Protein_Language_Model.py", "🧪 Protein language model (ESM-2)",
     "Masked amino-acid predictions, embeddings, contact maps, fine-tuning vs training from scratch."),
    ("pages/7_Language_Models.py", "🗣️ Language models",
     "Train your own: n-grams by counting, GPT- and BERT-style Transformers on DNA and proteins; fill the blank, "
     "then pretrain → fine-tune with few labels."),
    ("pages/5_Predict.py", "🔮 Predict",
     "Upload sequences and a saved model; get a table of predictions to download."),
    ("pages/6_Run_History.py", "📜 Run history",
     "Every run of this session in one table; overlay the curves of the runs you pick."),
]

cols = st.columns(3)
for i, (path, title, text) in enumerate([c for c in CARDS if (ROOT / c[0]).exists()]):
    with cols[i % 3].container(border=True):
        st.markdown(f"#### {title}")
        st.write(text)
        st.page_link(path, label="Open", icon="➡️", query_params={"seed": str(state.get("seed"))})

st.markdown("### 📚 Lessons")
st.caption("The course's exercises, one click each: every step opens its page with the exact settings, "
           "and the sidebar shows the step's text, a question and a check of what should happen. "
           "For a class: switch on 📽️ Projector mode in the sidebar's 🏫 Classroom box.")
lesson_catalog(projector=bool(state.get("projector")))

state.sync()
