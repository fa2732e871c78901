"""The load tool end to end, kept tiny: every scenario against a real server, figures written as JSON."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.load.run import main
from tests.load.scenarios import NEARBY, VISIBLE, Scenario


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_every_scenario_runs_and_reports(tiny_bundle, tmp_path):
    out = tmp_path / "load.json"
    code = main([
        "--bundle", str(tiny_bundle), "--units", "3", "--seconds", "20", "--clients", "2", "--items", "3",
        "--pool", "4", "--burst-items", "5", "--burst-max-items", "2", "--json", str(out),
    ])
    assert code == 0
    (target,) = json.loads(out.read_text())["targets"]
    rows = {row["scenario"]: row for row in target["results"]}
    assert set(rows) == {"cached", "uncached", "burst", "page"}
    for row in rows.values():
        assert row["errors"] == {} and row["ok_items"] == row["items"] > 0
        assert row["rss_mb"]["peak"] > 50  # the server process tree was sampled
    assert rows["cached"]["cached_items"] == rows["cached"]["items"] and rows["cached"]["image_fetches"] == 0
    assert rows["uncached"]["cached_items"] == 0 and rows["uncached"]["image_fetches"] == rows["uncached"]["items"]
    assert rows["burst"]["requests"] == 3 * rows["burst"]["units"]  # 5 items as 2 + 2 + 1
    assert rows["page"]["requests"] == 3 * rows["page"]["units"]  # the one on screen, then 2 + 2
    for name in ("burst", "page"):
        badges = rows[name]["badges"]
        assert badges["on_screen"] == "3-3" and 0 < badges["first_badge_ms"] <= badges["last_on_screen_badge_ms"] <= badges["last_badge_ms"]
        assert 0 <= badges["pages_on_screen_first"] <= rows[name]["units"]
    assert rows["uncached"]["server"]["model_calls"] >= 1 and rows["uncached"]["server"]["page_faults_per_item"] >= 0


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_several_bundles_are_measured_one_after_the_other_in_one_run(tiny_bundle, slow_bundle, tmp_path, capsys):
    out = tmp_path / "two.json"
    code = main([
        "--bundle", str(tiny_bundle), "--bundle", str(slow_bundle), "--scenarios", "page", "--units", "1",
        "--burst-items", "5", "--burst-max-items", "2", "--json", str(out),
    ])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["conditions"]["bundles"] == [str(tiny_bundle), str(slow_bundle)]
    assert [t["target"] for t in report["targets"]] == [str(tiny_bundle), str(slow_bundle)]
    for target in report["targets"]:
        (row,) = target["results"]
        assert row["scenario"] == "page" and row["ok_items"] == 5 and row["server"]["model_calls"] >= 1
    printed = capsys.readouterr().out
    assert printed.index(f"### bundle {tiny_bundle}") < printed.index(f"### bundle {slow_bundle}")


def test_a_page_sends_the_images_on_screen_first_with_priorities():
    page = Scenario("page", 1, 50, 16, page=True, prioritized=True)
    assert page.on_screen() == range(20, 30)
    assert page.requests(50) == [list(range(20, 30)), list(range(16)), [16, 17, 18, 19, *range(30, 42)], list(range(42, 50))]
    assert {page.priority(p) for p in range(20, 30)} == {VISIBLE} and {page.priority(p) for p in [*range(20), *range(30, 50)]} == {NEARBY}
    before = Scenario("burst", 1, 50, 16, page=True)
    assert before.requests(50) == [list(range(i, min(i + 16, 50))) for i in range(0, 50, 16)] and before.priority(25) is None


@pytest.mark.parametrize("url", ["http://10.0.0.5:8000", "http://example.com"])
def test_refuses_targets_off_this_machine(url):
    with pytest.raises(SystemExit):
        main(["--url", url])


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_the_flood_scenario_times_another_clients_image_and_counts_abandoned_work(tiny_bundle, tmp_path):
    out = tmp_path / "flood.json"
    code = main([
        "--bundle", str(tiny_bundle), "--scenarios", "flood", "--seconds", "6", "--clients", "3", "--items", "4", "--json", str(out),
    ])
    assert code == 0
    ((row,),) = [target["results"] for target in json.loads(out.read_text())["targets"]]
    assert row["scenario"] == "flood" and row["probe_unloaded_ms"]["n"] == 5 and row["probe_loaded_ms"]["n"] >= 1
    assert row["probe_unloaded_ms"]["failed"] == row["probe_loaded_ms"]["failed"] == 0
    assert row["probe_ratio"] > 0 and row["rss_mb"]["peak"] > 50
    assert row["flood_requests"]["answered"] >= 1 and row["abandoned_items_sent"] == 4 * row["flood_requests"].get("abandoned", 0)
    assert set(row["work_dropped"]) <= {"fetch", "compute"}
