"""`auto` hyperparameters and the checks on given ones."""

from __future__ import annotations

import pytest

from kotae.errors import InvalidRequest
from kotae.training import hyperparameters as hp


@pytest.mark.parametrize(
    ("n", "epochs"), [(10, 10), (20, 5), (34, 3), (100, 3), (10_000, 2), (30_000, 1)]
)
def test_auto_epochs_aim_at_about_a_hundred_examples_seen(n: int, epochs: int) -> None:
    assert hp.resolve({}, n)["n_epochs"] == epochs


def test_auto_batch_and_rate() -> None:
    assert hp.resolve({}, 20)["batch_size"] == 1
    assert hp.resolve({}, 5000)["batch_size"] == 10
    assert hp.resolve({}, 20)["learning_rate_multiplier"] == hp.AUTO_MULTIPLIER
    given = hp.resolve({"n_epochs": 4, "batch_size": 64, "learning_rate_multiplier": 0.5}, 20)
    assert given == {"n_epochs": 4, "batch_size": 20, "learning_rate_multiplier": 0.5}


def test_checks() -> None:
    assert hp.check({"n_epochs": "auto", "batch_size": 2}, "h") == {
        "n_epochs": "auto",
        "batch_size": 2,
        "learning_rate_multiplier": "auto",
    }
    for bad, param in (
        ({"n_epochs": 1.5}, "h.n_epochs"),
        ({"batch_size": 0}, "h.batch_size"),
        ({"learning_rate_multiplier": "fast"}, "h.learning_rate_multiplier"),
        ({"n_epochs": True}, "h.n_epochs"),
        ({"warmup": 3}, "h.warmup"),
    ):
        with pytest.raises(InvalidRequest) as err:
            hp.check(bad, "h")
        assert err.value.param == param


def test_dpo_beta() -> None:
    assert hp.check({}, "h", dpo=True)["beta"] == "auto"
    assert hp.resolve(hp.check({}, "h", dpo=True), 20)["beta"] == hp.AUTO_BETA
    assert hp.resolve(hp.check({"beta": 0.5}, "h", dpo=True), 20)["beta"] == 0.5
    with pytest.raises(InvalidRequest):
        hp.check({"beta": 0.5}, "h")  # only DPO has a beta
