"""Language models on DNA and proteins: tokens, corpora, n-grams, masked and causal Transformers,
their views, and pretrain -> fine-tune. Plain data in and out; never imports streamlit.

    from playground.lm import Tokenizer, make_corpus, NGramModel, lm_run, views, finetune
"""
from playground.lm.tokens import Tokenizer, make_tokenizer, encode_batch  # noqa: F401
from playground.lm.corpus import Corpus, CorpusError, make_corpus, corpus_from_fasta  # noqa: F401
from playground.lm.ngram import NGramModel, best_order, fit_corpus  # noqa: F401
from playground.lm.masking import mask_tokens, lm_loss  # noqa: F401
from playground.lm.models import LMSpec, LMClassifierSpec, LanguageModel, LMClassifier, classifier_from_lm  # noqa: F401
from playground.lm.training import DEFAULTS, LMRun, lm_data, lm_run, lm_spec  # noqa: F401
from playground.lm import views, finetune  # noqa: F401

__all__ = ["Tokenizer", "make_tokenizer", "encode_batch", "Corpus", "CorpusError", "make_corpus", "corpus_from_fasta",
           "NGramModel", "best_order", "fit_corpus", "mask_tokens", "lm_loss", "LMSpec", "LMClassifierSpec",
           "LanguageModel", "LMClassifier", "classifier_from_lm", "DEFAULTS", "LMRun", "lm_data", "lm_run", "lm_spec",
           "views", "finetune"]
