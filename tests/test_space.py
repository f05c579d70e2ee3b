"""Search-space files: the shipped spaces load; one fixture per error, named by file and key."""

from pathlib import Path

import optuna
import pytest

import efficientvit
from evit_search.errors import SpaceError, UserError
from evit_search.search.budget import parse_budget
from evit_search.search.space import load_space

FIX = Path(__file__).parent / "fixtures" / "spaces"
ERRORS = {
    "unknown_top_key.yaml": r"unknown_top_key.yaml: objective: unknown key",
    "unknown_stage_key.yaml": r"stages\[0\]\.width: unknown key",
    "wrong_type.yaml": r"stages\[0\]\.dim: choice 'wide' must be an int",
    "empty_choice.yaml": r"stages\[0\]\.depth: empty choice list",
    "no_valid_candidate.yaml": r"stages\[1\]: no candidate can be valid; for example stages\[1\]\.dim=20 is not divisible by num_heads=3",
    "empty_range.yaml": r"stages\[0\]\.depth: empty range: low=3 > high=1",
    "missing_required.yaml": r"stages\[0\]\.depth: is required",
    "bad_switch.yaml": r"fixed\.attention: 'linear' is not one of cga, mhsa",
    "bad_input.yaml": r"input\.img_size: -3 must be a positive int",
    "bad_reference.yaml": r"reference: 'resnet50' is not a model name",
    "bad_kernels.yaml": r"stages\[0\]\.kernels: kernel list '7,x' is not comma-separated ints",
    "not_yaml.yaml": r"not_yaml.yaml: not valid YAML",
    "bad_limit.yaml": r"limits\.latency_ms: unknown key",
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_space_error_names_file_and_key(name):
    with pytest.raises(SpaceError, match=ERRORS[name]):
        load_space(str(FIX / name))


def test_every_fixture_has_an_expected_error():
    assert {p.name for p in FIX.glob("*.yaml")} == set(ERRORS)


@pytest.mark.parametrize("name", ["efficientvit", "tiny"])
def test_shipped_spaces_load_and_sample_valid_configs(name):
    space = load_space(name)
    study = optuna.create_study(directions=["maximize", "maximize"], sampler=optuna.samplers.RandomSampler(seed=0))
    valid = 0
    for _ in range(20):
        t = study.ask()
        try:
            space.suggest(t).validate()
            valid += 1
        except efficientvit.ConfigError:
            pass  # an invalid sample: counted by its absence from ``valid``
        study.tell(t, state=optuna.trial.TrialState.PRUNED)
    assert valid >= 15  # most sampled candidates are valid


def test_unknown_space_name():
    with pytest.raises(SpaceError, match="no such file and no built-in space"):
        load_space("nonexistent")


def test_same_seed_same_candidates():
    space = load_space("efficientvit")

    def seq(seed):
        study = optuna.create_study(directions=["maximize", "maximize"], sampler=optuna.samplers.NSGAIISampler(seed=seed))
        out = []
        for _ in range(6):
            t = study.ask()
            out.append(space.suggest(t).arch_id())
            study.tell(t, [0.5, 1.0])
        return out

    assert seq(3) == seq(3) and seq(3) != seq(4)


@pytest.mark.parametrize("text,field,value", [
    ("1.25x", "min_ratio", 1.25), ("1.25X", "min_ratio", 1.25), ("500ips", "min_images_per_s", 500.0),
    ("500 IPS", "min_images_per_s", 500.0), ("20ms", "max_ms_per_batch", 20.0), ("params<5M", "max_params_m", 5.0),
    ("Params<5M", "max_params_m", 5.0), ("flops<=1.5G", "max_flops_m", 1500.0), ("FLOPS < 300m", "max_flops_m", 300.0),
    ("FLOPs<300M", "max_flops_m", 300.0),
])
def test_budget_terms_in_any_case_and_spacing(text, field, value):
    assert getattr(parse_budget(text), field) == pytest.approx(value)  # as typed


def test_budget_combined_and_constraints():
    b = parse_budget("1.25x,params<5M")
    assert b.cost_constraints(4.0, 100) == {"params_m": -1.0}
    assert b.speed_constraints(1.5, 100, 10) == {"throughput_ratio": pytest.approx(-0.25)}
    assert b.speed_constraints(1.0, 100, 10)["throughput_ratio"] > 0  # infeasible: constraint > 0


def test_speed_constraint_signs():
    """<= 0 is met: more img/s than asked, fewer ms per batch than allowed."""
    b = parse_budget("500ips,20ms")
    assert b.speed_constraints(None, 600.0, 25.0) == {"images_per_s": pytest.approx(-100.0), "ms_per_batch": pytest.approx(5.0)}
    assert b.speed_constraints(None, 400.0, 15.0) == {"images_per_s": pytest.approx(100.0), "ms_per_batch": pytest.approx(-5.0)}


def test_space_limits_merge_with_the_budget():
    """The space's limits apply unless the budget is stricter; a budget cannot loosen them."""
    assert parse_budget("1.25x", {"params_m": 5.0}).max_params_m == 5.0
    assert parse_budget("1.25x,params<3M", {"params_m": 5.0}).max_params_m == 3.0
    assert parse_budget("params<8M", {"params_m": 5.0}).max_params_m == 5.0
    assert parse_budget("1.25x", {"flops_m": 300.0}).cost_constraints(2.0, 350.0) == {"flops_m": pytest.approx(50.0)}


def test_budget_verdict_from_the_intervals():
    from types import SimpleNamespace

    b = parse_budget("1.25x")
    rec = lambda lo, hi: SimpleNamespace(ratio_ci_low=lo, ratio_ci_high=hi)  # noqa: E731
    assert b.verdict(rec(1.30, 1.40)) == "within"
    assert b.verdict(rec(1.00, 1.20)) == "outside"
    assert b.verdict(rec(1.20, 1.30)) == "borderline"  # the interval contains the budget
    # img/s and ms per batch: at batch 16, 20 ms per batch is 800 img/s
    ips = lambda lo, hi: SimpleNamespace(images_per_s_ci_low=lo, images_per_s_ci_high=hi, batch_size=16)  # noqa: E731
    for text in ("800ips", "20ms"):
        b = parse_budget(text)
        assert b.verdict(ips(850.0, 900.0)) == "within", text
        assert b.verdict(ips(700.0, 780.0)) == "outside", text
        assert b.verdict(ips(790.0, 810.0)) == "borderline", text


@pytest.mark.parametrize("bad", ["1.25", "fast", "0x", "1x,2x", "", "params>5M"])
def test_budget_errors(bad):
    with pytest.raises(UserError, match="--budget"):
        parse_budget(bad)


def test_knobs_a_protocol_cannot_see_are_named():
    from evit_search.training.protocols import get_protocol

    space = load_space("efficientvit")
    assert space.blind_knobs(get_protocol("cpu-64px-3x10k").token_grid()) == ["stages[2].key_dim", "stages[2].kernels"]
    assert space.blind_knobs(get_protocol("proxy").token_grid()) == []  # 7x4x2 tokens: attention everywhere


@pytest.mark.parametrize("model", [f"efficientvit_m{i}" for i in range(6)])
def test_the_default_space_holds_the_papers_models(model):
    """Each of M0-M5 encodes to parameters that decode to the registry's config (same arch id)."""
    space = load_space("efficientvit")
    cfg = efficientvit.get_config(model)
    params = space.encode(cfg)
    assert params is not None, model
    study = optuna.create_study(directions=["maximize", "maximize"])
    study.enqueue_trial(params)
    assert space.suggest(study.ask()).validate().arch_id() == cfg.with_overrides(**space.input).arch_id()


def test_a_model_outside_the_space_does_not_encode():
    space = load_space("efficientvit")
    assert space.encode(efficientvit.get_config("efficientvit_m4").with_overrides(depth=(5, 2, 3))) is None
    assert space.encode(efficientvit.get_config("efficientvit_m4_mhsa")) is None  # a switch the space fixes


def test_the_default_space_rarely_samples_invalid_candidates():
    space = load_space("efficientvit")
    study = optuna.create_study(directions=["maximize", "maximize"], sampler=optuna.samplers.RandomSampler(seed=1))
    invalid = 0
    for _ in range(200):
        t = study.ask()
        try:
            space.suggest(t).validate()
        except efficientvit.ConfigError:
            invalid += 1
        study.tell(t, [0.0, 0.0])
    assert invalid == 0


def test_run_enqueues_the_papers_models_first_tagged_and_once(tmp_path):
    from evit_search import storage as st
    from evit_search.search.run import enqueue_paper_models

    space = load_space("efficientvit")
    store = st.create_study("paper", str(tmp_path / "s.db"), {})
    assert enqueue_paper_models(store, space, "efficientvit_m4") == [f"efficientvit_m{i}" for i in (0, 1, 2, 3, 5)]
    enqueue_paper_models(store, space, "efficientvit_m4")  # a resumed run: nothing twice
    for name in ("efficientvit_m0", "efficientvit_m1", "efficientvit_m2", "efficientvit_m3", "efficientvit_m5"):
        t = store.ask()
        assert t.attrs["paper_model"] == name
        assert space.suggest(t).arch_id() == efficientvit.get_config(name).arch_id()
        t.finish("invalid")
    t = store.ask()
    assert "paper_model" not in t.attrs  # then the sampler's own draws
    t.finish("invalid")
