"""``export`` finds a trial's trained weights from any working directory (issue 17.5)."""

import torch
from helpers import randomize

import efficientvit
from evit_search import storage as st
from evit_search.search.export import export_trial
from evit_search.tui.demo import make_study


def test_export_from_another_directory_finds_the_checkpoint(tmp_path, monkeypatch):
    home = tmp_path / "project"
    (home / "runs").mkdir(parents=True)
    url = f"sqlite:///{home / 's.db'}"
    store = make_study(url, "tiny", 1)
    # the trained model differs from the measured config (grey 32 px, 4 classes) and has its own weights
    trained = randomize(efficientvit.create_model("efficientvit_m0", img_size=32, in_chans=1, num_classes=4), seed=5).eval()
    ckpt = home / "runs" / "trial-1.pt"
    torch.save({"config": trained.config.to_dict(), "state_dict": trained.state_dict()}, ckpt)
    monkeypatch.chdir(home)  # the run writes the checkpoint from the project folder
    t = store.ask()
    t.set("config", store.records()[0].config)
    t.set("checkpoint", store.stored_path(ckpt))
    t.finish("ok", values=[60.0, 1.5], constraints={"throughput_ratio": -0.25})
    assert st.load_study("tiny", url).record(1).checkpoint == "runs/trial-1.pt"  # relative to the storage file

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    written, note = export_trial("tiny", 1, "out", url)
    assert note is None, note  # not the random-weights fallback
    exported = efficientvit.load_model(elsewhere / "out" / "trial-1.pt")
    assert exported.config.num_classes == 4 and exported.config.in_chans == 1 and exported.config.img_size == 32
    for k, v in trained.state_dict().items():
        assert torch.equal(exported.state_dict()[k], v), k
    assert {p.name for p in written} == {"trial-1-config.yaml", "trial-1.pt", "trial-1.onnx"}

