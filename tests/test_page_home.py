"""AppTest tests of the landing page (app.py)."""


def test_home_has_a_card_per_page_and_the_shared_sidebar(app_test):
    at = app_test("app.py")
    at.run()
    assert not at.exception
    assert at.title[0].value.startswith("🧬 Sequence Deep Learning Playground")
    text = " ".join(m.value for m in at.markdown)
    for card in ("Neural network basics", "DNA & convolutional networks", "Sequence models & attention",
                 "Protein language model (ESM-2)", "Predict", "Run history", "Lessons"):
        assert card in text, card
    assert at.number_input(key="seed").value == 0
    assert "Running on" in " ".join(c.value for c in at.sidebar.caption)


def test_home_seed_from_link_and_garbage_warning(app_test):
    at = app_test("app.py", {"seed": "42", "nonsense": "x"})
    at.run()
    assert not at.exception
    assert at.number_input(key="seed").value == 42
    assert any("nonsense" in w.value for w in at.warning)
