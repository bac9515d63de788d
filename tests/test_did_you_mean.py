"""The shared "did you mean ...?" helpers of :mod:`simrec.errors`."""

from __future__ import annotations

from simrec.errors import did_you_mean, did_you_mean_or_list


def test_near_miss_suggests() -> None:
    assert did_you_mean("tRDC", ["tRCD", "tRP", "tCL"]) == " (did you mean 'tRCD'?)"


def test_far_miss_gives_nothing() -> None:
    assert did_you_mean("bandwidth", ["tRCD", "tRP", "tCL"]) == ""
    assert did_you_mean("x", []) == ""


def test_several_choices_picks_the_closest() -> None:
    choices = ["dram0", "dram1", "gpu0", "cpu0", "ssd0"]
    assert did_you_mean("gpu9", choices) == " (did you mean 'gpu0'?)"
    assert did_you_mean("dram1x", choices, n=2) == " (did you mean 'dram1' or 'dram0'?)"
    # best first: 'dram0' and 'gram0' tie (difflib then puts the greater string first)
    assert did_you_mean("ram0", ["dram1", "dram0", "gram0"], n=3) == (
        " (did you mean 'gram0', 'dram0' or 'dram1'?)"
    )


def test_matching_is_case_sensitive() -> None:
    # difflib compares characters as they are, so a change of case alone is no near miss
    assert did_you_mean("DRAM", ["dram", "ssd"]) == ""
    assert did_you_mean("Dram", ["dram", "ssd"]) == " (did you mean 'dram'?)"


def test_cutoff_and_form() -> None:
    # 'lane' ~ 'lanes_wxyz' scores 0.57: under the default cutoff (0.6), over 0.5
    assert did_you_mean("lane", ["lanes_wxyz"]) == ""
    assert did_you_mean("lane", ["lanes_wxyz"], cutoff=0.5) == " (did you mean 'lanes_wxyz'?)"
    assert did_you_mean("tt_rnak", ["tt_rank"], form="did you mean {}? ") == (
        "did you mean 'tt_rank'? "
    )
    assert did_you_mean(3, [1, 3]) == " (did you mean '3'?)"  # non-strings match as text


def test_or_list() -> None:
    opts = ["cpu0", "dram0", "gpu0"]
    assert did_you_mean_or_list("gpu1", opts, "use one of the devices") == (
        "did you mean 'gpu0'? (use one of the devices: cpu0, dram0, gpu0)"
    )
    assert did_you_mean_or_list("zzz", opts, "use one of the devices") == (
        "use one of the devices: cpu0, dram0, gpu0"
    )
    many = [f"p{i:02d}" for i in range(40)]
    text = did_you_mean_or_list("qqq", many, "presets", limit=30)
    assert text == "presets: " + ", ".join(many[:30]) + ", ..."
    assert did_you_mean_or_list("qqq", many[:30], "presets", limit=30).endswith("p29")
