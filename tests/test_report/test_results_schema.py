"""docs/results-schema.md documents results.json: every key, both ways."""

import json
import os
import re

import pytest

# Trains models end to end: the full suite (tox, CI) runs it; `-m "not slow"` skips it.
pytestmark = pytest.mark.slow

SCHEMA_DOC = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "docs", "results-schema.md",
)
# Paths the small run below has no objects at: nothing fails, and it has no `fused`
# arm (a fused trial costs as much as the rest of the run; the fusion tests cover it).
EMPTY_IN_A_CLEAN_RUN = {
    "$.summary.conditions[*].failures[*]",
    "$.summary.fusion[*]",
    "$.summary.fusion[*].test.*.*",
    "$.summary.fusion[*].delta_m.*",
}


def parse_schema(text):
    """Returns {path: {key: presence}} from the doc's `Path:` lines and tables."""
    documented = {}
    paths = None
    for line in text.splitlines():
        if line.startswith("Path: "):
            paths = re.findall(r"`([^`]+)`", line)
            for path in paths:
                assert path not in documented, f"{path} is documented twice"
                documented[path] = {}
        elif line.startswith("| `") and paths:
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            key, presence = cells[0].strip("`"), cells[2].split()[0]
            assert presence in ("always", "ok", "optional"), line
            for path in paths:
                documented[path][key] = presence
        elif line.startswith("#"):
            paths = None
    return documented


def objects_at(data, path):
    """The dicts at a JSONPath-style path (`.key`, `[*]`, `.*`); nulls skipped."""
    assert path.startswith("$"), path
    objects = [data]
    for segment in [s for s in path[1:].split(".") if s]:
        name, each = (segment[:-3], True) if segment.endswith("[*]") else (segment, False)
        found = []
        for item in objects:
            if not isinstance(item, dict):
                continue
            if name == "*":
                values = list(item.values())
            elif name in item:
                values = [item[name]]
            else:
                values = []
            for value in values:
                if each and isinstance(value, list):
                    found.extend(value)
                elif not each:
                    found.append(value)
        objects = found
    return [item for item in objects if isinstance(item, dict)]


@pytest.fixture(scope="module")
def results(report_run_folder):
    with open(os.path.join(report_run_folder, "results.json")) as file:
        return json.load(file)


@pytest.fixture(scope="module")
def documented():
    with open(SCHEMA_DOC) as file:
        return parse_schema(file.read())


def test_schema_doc_covers_top_level_summary_and_trials(documented):
    for path in ("$", "$.summary", "$.summary.conditions[*]", "$.summary.gains[*]",
                 "$.trials[*]", "$.provenance", "$.config", "$.context"):
        assert path in documented, f"docs/results-schema.md has no table for {path}"


def test_every_documented_key_is_in_results_json(results, documented):
    missing = []
    for path, keys in documented.items():
        objects = objects_at(results, path)
        if not objects:
            assert path in EMPTY_IN_A_CLEAN_RUN, f"no objects at {path} in results.json"
            continue
        for key, presence in keys.items():
            if presence == "always":
                holders = objects
            elif presence == "ok":
                holders = [item for item in objects if item.get("status") == "ok"]
            else:
                continue
            if not holders or any(key not in item for item in holders):
                missing.append(f"{path}.{key}")
    assert not missing, f"documented but missing from results.json: {missing}"


def test_every_key_in_results_json_is_documented(results, documented):
    undocumented = []
    for path, keys in documented.items():
        for item in objects_at(results, path):
            undocumented += [f"{path}.{key}" for key in item if key not in keys]
    assert not undocumented, (
        "keys in results.json that docs/results-schema.md does not document: "
        f"{sorted(set(undocumented))}"
    )


def test_top_level_and_summary_keys_match_the_doc_exactly(results, documented):
    assert set(results) == set(documented["$"])
    assert set(results["summary"]) == set(documented["$.summary"])


def test_schema_parser_reads_paths_and_presence():
    text = "\n".join([
        "Path: `$.a[*]`, `$.b`", "", "| key | type | presence | meaning |",
        "|---|---|---|---|", "| `x` | int | always | . |", "| `y` | str | optional | . |",
    ])
    assert parse_schema(text) == {
        "$.a[*]": {"x": "always", "y": "optional"},
        "$.b": {"x": "always", "y": "optional"},
    }
    data = {"a": [{"x": 1}, {"x": 2, "y": None}], "m": {"p": [{"z": 1}], "q": [{"z": 2}]}}
    assert objects_at(data, "$.a[*]") == [{"x": 1}, {"x": 2, "y": None}]
    assert objects_at(data, "$.m.*[*]") == [{"z": 1}, {"z": 2}]
