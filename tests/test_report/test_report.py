"""Reports rebuild from a stored run, show exactly the numbers of results.json, and render."""

import base64
import html.parser
import json
import os
import re
import shutil
import subprocess
import sys

import keras
import pytest

import keras_tl
import keras_tl.experiment.run
import keras_tl.experiment.trial
from keras_tl.errors import ConfigError
from keras_tl.report import compare_runs, write_reports
from keras_tl.report.html import render_html
from keras_tl.report.markdown import render_markdown
from keras_tl.report.plots import arm_style
from keras_tl.results.summary import rebuild

# Trains models end to end: the full suite (tox, CI) runs it; `-m "not slow"` skips it.
pytestmark = pytest.mark.slow

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EXPECTED_PLOTS = ("gains", "freeze_depth", "learning_curves", "retention", "scores", "cka")


@pytest.fixture(scope="module")
def run(report_run_folder):
    """One tiny evaluation (conftest.py), then its reports rebuilt from the store alone."""
    folder = report_run_folder

    def no_training(*args, **kwargs):
        raise AssertionError("rebuilding a report must not train anything")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(keras_tl.experiment.run, "run_trial", no_training)
        patch.setattr(keras.Model, "fit", no_training)
        rebuild(folder)  # results.json from trials.sqlite alone
        with open(os.path.join(folder, "results.json")) as file:
            data = json.load(file)
        paths = write_reports(data, folder)
    with open(paths["md"], encoding="utf-8") as file:
        markdown = file.read()
    with open(paths["html"], encoding="utf-8") as file:
        page = file.read()
    return {"folder": folder, "data": data, "paths": paths, "md": markdown, "html": page}


# ---------------------------------------------------------------------------
# The expected text of every table, written from results.json independently of
# the report code: the tables must equal these, cell by cell.


def num(value, digits=3):
    if value is None:
        return "-"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return f"{value:.{digits}f}"


def signed(value):
    return "-" if value is None else f"{value:+.3f}"


def interval(stat, sign=False):
    if not stat or stat.get("mean") is None:
        return "-"
    fmt = signed if sign else num
    if stat.get("ci_low") is None:
        return fmt(stat["mean"])
    return f"{fmt(stat['mean'])} [{fmt(stat['ci_low'])}, {fmt(stat['ci_high'])}]"


def p_text(value):
    if value is None:
        return "-"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def samples(entry):
    count = entry.get("num_samples")
    return str(count if count is not None else entry["train_size"])


BOUND = {"=": "", "<=": "≤ ", ">": "> ", None: ""}


def expected_tables(data):
    summary = data["summary"]
    metric = summary["primary_metric"]
    conditions = summary["conditions"]
    tables = {}

    for name, key in (("gains", "gains"), ("control", "gains_vs_control")):
        gains = summary[key]
        if not gains:
            continue
        wilcoxon = any(g.get("wilcoxon_p_value") is not None for g in gains)
        tables[name] = (
            ["condition", "train samples", "paired seeds", f"gain in test {metric} [95% CI]",
             "effect size", "p", "p (Holm)"] + (["Wilcoxon p"] if wilcoxon else [])
            + ["verdict"],
            [[g["label"], samples(g), str(g["n"]), interval(g, sign=True),
              signed(g.get("effect_size")), p_text(g["p_value"]), p_text(g["p_value_adjusted"])]
             + ([p_text(g.get("wilcoxon_p_value"))] if wilcoxon else []) + [g["verdict"]]
             for g in gains],
        )

    test_metrics = [metric] + sorted(
        {m for c in conditions for m in c["test"]} - {metric},
        key=[m for c in conditions for m in c["test"]].index,
    )
    tables["conditions"] = (
        ["condition", "recipe", "frozen layers", "train samples", "seeds ok", "failed"]
        + [f"test {m} [95% CI]" for m in test_metrics] + [f"val {metric} [95% CI]"],
        [[c["label"], c["recipe"], str(c["freeze_depth"]), samples(c), str(c["n"]),
          str(c["num_failed"])] + [interval(c["test"].get(m)) for m in test_metrics]
         + [interval(c["val"].get(metric))] for c in conditions],
    )

    by_key = {(c["arm"], c["source"], c["freeze_depth"], c["train_size"]): c for c in conditions}
    swept = {
        (curve["arm"], curve["source"], curve["train_size"]):
            ", ".join(str(p["freeze_depth"]) for p in curve["points"])
        for curve in summary["curves"]["freeze_depth"]
    }
    tables["best_freeze_depth"] = (
        ["arm", "train samples", "depths swept", "best freeze depth (val)",
         f"its test {metric} [95% CI]"],
        [[row["arm"], samples(row), swept[(row["arm"], row["source"], row["train_size"])],
          str(row["freeze_depth"]),
          interval(by_key[(row["arm"], row["source"], row["freeze_depth"], row["train_size"])]
                   ["test"][metric])]
         for row in summary["best_freeze_depth"]],
    )

    tables["data_efficiency"] = (
        ["condition", "train samples", "scratch samples to match", "data ratio"],
        [[row["label"], str(row["train_size"]),
          f"{BOUND[row['bound']]}{row['scratch_size']:.1f}",
          f"{BOUND[row['bound']]}{row['data_ratio']:.2f}x"]
         for row in summary["data_efficiency"]],
    )

    source_metric = summary["retention"][0]["metric"]
    tables["retention"] = (
        ["condition", "train size", f"source {source_metric} before [95% CI]",
         f"source {source_metric} after [95% CI]", "forgetting [95% CI]"],
        [[row["label"], num(row["train_size"]), interval(row["before"]),
          interval(row["after"]), interval(row["forgetting"], sign=True)]
         for row in summary["retention"]],
    )

    scored = [c for c in conditions if c["scores"]]
    names = list(dict.fromkeys(name for c in scored for name in c["scores"]))
    tables["scores"] = (
        ["condition", "train samples", f"test {metric} [95% CI]", *names],
        [[c["label"], samples(c), interval(c["test"][metric])]
         + [interval(c["scores"].get(name)) for name in names] for c in scored],
    )
    tables["rank_agreement"] = (
        ["score", "over", "train size", "n", "Kendall tau", "weighted tau", "Pearson"],
        [[row["score"], row["scope"], num(row["train_size"]), str(row["n"]),
          signed(row["kendall_tau"]), signed(row["weighted_tau"]), signed(row["pearson"])]
         for row in summary["rank_agreement"]],
    )

    tables["stream"] = (
        ["condition", "train size", "ACC [95% CI]", "BWT [95% CI]", "FWT [95% CI]",
         "forgetting [95% CI]", "R (mean)", "random init (mean)"],
        [[row["label"], num(row["train_size"]), interval(row["acc"]),
          interval(row["bwt"], sign=True), interval(row["fwt"], sign=True),
          interval(row["forgetting"], sign=True),
          " / ".join(" ".join(num(v) for v in line) for line in row["accuracy_matrix"]),
          " ".join(num(v) for v in row["random_init"])]
         for row in summary["stream"]],
    )
    layers = list(dict.fromkeys(layer for row in summary["cka"] for layer in row["layers"]))
    tables["cka"] = (
        ["condition", "train size", *layers],
        [[row["label"], num(row["train_size"])]
         + [interval(row["cka"].get(layer)) for layer in layers] for row in summary["cka"]],
    )

    tables["search"] = (
        ["condition", "train samples", "learning rate", "batch size",
         f"mean val {metric}", "seeds", "chosen"],
        [[row["label"], samples(row), f"{row['learning_rate']:g}", str(row["batch_size"]),
          num(row["mean"]), str(row["n"]), str(row["chosen"])]
         for row in summary["search"]],
    )

    provenance = data["provenance"]
    values = dict(
        (row[0], row[1]) for row in [
            ("experiment", data["config"]["name"]),
            ("backend", f"{provenance['backend']} {provenance['backend_version']}"),
            ("keras", provenance["keras_version"]),
            ("keras-tl", provenance["keras_tl_version"]),
            ("numpy", provenance["numpy_version"]),
            ("python", provenance["python_version"]),
            ("seeds", ", ".join(str(s) for s in provenance["seeds"])),
            ("trials", f"{summary['num_trials']} ({summary['num_failed']} failed)"),
            ("timestamp", provenance["timestamp"]),
            ("results schema version", str(data["schema_version"])),
            ("git sha", provenance["git_sha"] or "- (not run from a git checkout)"),
        ]
    )
    tables["provenance"] = values
    return tables


def expected_trials_table(data):
    metric = data["summary"]["primary_metric"]
    trials = data["trials"]
    test_metrics = list(dict.fromkeys([metric] + [m for t in trials for m in t["test"]]))
    source_metric = data["summary"]["retention"][0]["metric"]
    header = (["arm", "frozen layers", "train samples", "seed", "status", "epochs",
               "learning rate"] + [f"test {m}" for m in test_metrics]
              + [f"val {metric}", f"source {source_metric} after", "fit time (s)"])
    rows = [
        [t["arm"], str(t["freeze_depth"]), str(t["train_size"]), str(t["seed"]), t["status"],
         str(t["epochs"]), f"{t['learning_rate']:g}"]
        + [num(t["test"][m]) for m in test_metrics] + [num(t["val"][metric])]
        + [num((t["source_metrics"] or {}).get("after", {}).get(source_metric))
           if t["source_metrics"] else "-", num(t["fit_time"], 1)]
        for t in trials
    ]
    return header, rows


# ---------------------------------------------------------------------------
# Parsing the reports back.


def markdown_tables(text):
    tables = {}
    lines = text.splitlines()
    for index, line in enumerate(lines):
        found = re.fullmatch(r"<!-- table: (\S+) -->", line)
        if not found:
            continue
        rows = []
        for row in lines[index + 1:]:
            if not row.startswith("|"):
                break
            rows.append([cell.strip().replace("\\|", "|")
                         for cell in re.split(r"(?<!\\)\|", row.strip())[1:-1]])
        tables[found.group(1)] = (rows[0], rows[2:])
    return tables


class PageParser(html.parser.HTMLParser):
    """Collects tables (by id), image sources, links and the verdict's text."""

    def __init__(self):
        super().__init__()
        self.tables, self.sources, self.links = {}, [], []
        self.table = self.row = self.cell = None
        self.verdict, self.in_verdict = "", False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.table = self.tables.setdefault(attrs.get("id"), [])
        elif tag == "tr" and self.table is not None:
            self.row = []
            self.table.append(self.row)
        elif tag in ("td", "th") and self.row is not None:
            self.cell = ""
        elif tag == "img":
            self.sources.append(attrs.get("src", ""))
        elif tag == "a":
            self.links.append(attrs.get("href", ""))
        elif tag == "div" and attrs.get("id") == "verdict":
            self.in_verdict = True

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.row.append(self.cell.strip())
            self.cell = None
        elif tag == "table":
            self.table = None
        elif tag == "div":
            self.in_verdict = False

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data
        if self.in_verdict:
            self.verdict += data


def parse_page(page):
    parser = PageParser()
    parser.feed(page)
    tables = {name: (rows[0], rows[1:]) for name, rows in parser.tables.items()}
    return parser, tables


# ---------------------------------------------------------------------------


def test_report_files_are_written_and_rebuilt_without_training(run):
    assert set(run["paths"]) == {"html", "md"}
    for path in run["paths"].values():
        assert os.path.isfile(path) and os.path.getsize(path) > 1000
    leftovers = [name for name in os.listdir(run["folder"]) if name.startswith(".tmp-")]
    assert not leftovers


@pytest.mark.parametrize("name", ["gains", "control", "conditions", "best_freeze_depth",
                                  "data_efficiency", "retention", "scores", "rank_agreement",
                                  "stream", "cka", "search"])
def test_every_markdown_and_html_table_equals_results_json(run, name):
    header, rows = expected_tables(run["data"])[name]
    md_header, md_rows = markdown_tables(run["md"])[name]
    assert md_header == header
    assert md_rows == rows
    _, html_tables = parse_page(run["html"])
    assert html_tables[name] == (header, rows)


def test_the_search_summary_follows_from_the_trials(run):
    """Each condition's row per setting: the mean val metric of its seeds and how
    many seeds kept it, from the trials' own records (the config searches two
    batch sizes at one learning rate)."""
    data = run["data"]
    search = data["config"]["search"]
    settings = [(rate, size) for rate in search["learning_rate"]
                for size in search["batch_size"]]
    expected = []
    conditions = {}
    for trial in data["trials"]:
        if trial["status"] == "ok":
            key = (trial["arm"], trial["source"], trial["freeze_depth"],
                   trial["requested_train_size"])
            conditions.setdefault(key, []).append(trial)
    for (arm, source, depth, size), trials in conditions.items():
        for trial in trials:
            assert [(row["learning_rate"], row["batch_size"])
                    for row in trial["validation_by_setting"]] == settings
            assert trial["validation_by_learning_rate"] is None
            best = max(trial["validation_by_setting"], key=lambda row: row["val"])
            assert (trial["learning_rate"], trial["batch_size"]) == (
                best["learning_rate"], best["batch_size"])
            assert trial["val"][data["summary"]["primary_metric"]] == best["val"]
        for rate, batch_size in settings:
            values = [row["val"] for t in trials for row in t["validation_by_setting"]
                      if (row["learning_rate"], row["batch_size"]) == (rate, batch_size)]
            chosen = sum((t["learning_rate"], t["batch_size"]) == (rate, batch_size)
                         for t in trials)
            expected.append((arm, source, depth, size, rate, batch_size, len(values),
                             pytest.approx(sum(values) / len(values)), chosen))
    shown = [(row["arm"], row["source"], row["freeze_depth"], row["train_size"],
              row["learning_rate"], row["batch_size"], row["n"], row["mean"], row["chosen"])
             for row in data["summary"]["search"]]
    assert sorted(shown, key=str) == sorted(expected, key=str)


def test_provenance_table_shows_the_stored_provenance(run):
    expected = expected_tables(run["data"])["provenance"]
    shown_tables = (markdown_tables(run["md"])["provenance"],
                    parse_page(run["html"])[1]["provenance"])
    for shown in shown_tables:
        values = dict(shown[1])
        for item, value in expected.items():
            assert values[item] == value, item


def test_verdict_line_states_the_best_gain_and_its_adjusted_p(run):
    best = run["data"]["summary"]["best"]
    first_quote = next(line for line in run["md"].splitlines() if line.startswith(">"))
    assert run["md"].index(first_quote) < run["md"].index("\n## ")
    parser, _ = parse_page(run["html"])
    for text in (first_quote, parser.verdict):
        assert f"Verdict: {best['verdict']}" in text
        assert best["label"] in text
        assert f"{best['mean']:+.3f}" in text
        if best["ci_low"] is None:
            assert "[no 95% CI: every paired seed gave the same gain]" in text
        else:
            assert f"95% CI {best['ci_low']:+.3f}, {best['ci_high']:+.3f}" in text
        assert f"p (Holm) = {p_text(best['p_value_adjusted'])}" in text


def test_html_trial_table_equals_the_trial_records(run):
    _, tables = parse_page(run["html"])
    assert tables["trials"] == expected_trials_table(run["data"])
    assert "trials" not in markdown_tables(run["md"])


def test_every_table_in_the_reports_is_checked(run):
    checked = set(expected_tables(run["data"])) | {"trials"}
    assert set(markdown_tables(run["md"])) <= checked
    assert set(parse_page(run["html"])[1]) <= checked


def test_plots_are_non_empty_pngs_referenced_by_both_reports(run):
    folder = os.path.join(run["folder"], "plots")
    assert sorted(os.listdir(folder)) == sorted(f"{name}.png" for name in EXPECTED_PLOTS)
    for name in EXPECTED_PLOTS:
        with open(os.path.join(folder, f"{name}.png"), "rb") as file:
            content = file.read()
        assert content.startswith(PNG_SIGNATURE) and len(content) > 1024
    referenced = re.findall(r"!\[[^\]]*\]\((plots/[^)]+\.png)\)", run["md"])
    assert sorted(referenced) == sorted(f"plots/{name}.png" for name in EXPECTED_PLOTS)
    parser, _ = parse_page(run["html"])
    assert len(parser.sources) == len(EXPECTED_PLOTS)
    for source in parser.sources:
        assert source.startswith("data:image/png;base64,")
        content = base64.b64decode(source.split(",", 1)[1])
        assert content.startswith(PNG_SIGNATURE) and len(content) > 1024


def test_html_is_self_contained(run):
    page = run["html"]
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert not re.search(r"url\(\s*['\"]?\s*(https?:)?//", page, re.IGNORECASE)
    assert "@import" not in page
    parser, _ = parse_page(page)
    assert all(link.startswith("#") for link in parser.links)


def test_failures_fusion_and_unknown_summary_sections_are_reported(run):
    data = json.loads(json.dumps(run["data"]))
    condition = data["summary"]["conditions"][1]
    condition["failures"] = [{"seed": 7, "error": "non-finite loss at epoch 3"}]
    data["summary"]["num_failed"] = 1

    def stat(mean, low, high):
        return {"mean": mean, "std": 0.01, "sem": 0.005, "n": 2, "ci_low": low, "ci_high": high}

    data["summary"]["fusion"] = [{
        "label": "fused", "train_size": 20, "tasks": ["digits:0-4", "digits:5-9"],
        "test": {"digits:0-4": {"accuracy": stat(0.85, 0.8, 0.9)},
                 "digits:5-9": {"accuracy": stat(0.6401, 0.6042, 0.6756)}},
        "delta_m": {"metric_balanced": stat(-0.0125, -0.0760, 0.0510),
                    "task_balanced": stat(0.5376, 0.4421, 0.6331)},
        "baselines": {"target": "scratch (same seed and train size)"},
    }]
    data["summary"]["something_new"] = [{"name": "x", "value": stat(0.25, 0.2, 0.3)}]
    markdown = render_markdown(data)
    tables = markdown_tables(markdown)
    assert tables["failures"][1] == [[condition["label"], samples(condition), "7",
                                      "non-finite loss at epoch 3"]]
    assert tables["fusion"] == (
        ["condition", "train size", "tasks", "delta_m metric-balanced [95% CI]",
         "delta_m task-balanced [95% CI]"],
        [["fused", "20", "digits:0-4, digits:5-9", "-0.013 [-0.076, +0.051]",
          "+0.538 [+0.442, +0.633]"]],
    )
    assert tables["fusion_tasks"][1] == [
        ["fused", "20", "digits:0-4", "0.850 [0.800, 0.900]"],
        ["fused", "20", "digits:5-9", "0.640 [0.604, 0.676]"],
    ]
    assert "## Something new" in markdown
    assert tables["something_new"][1] == [["x", "0.250 [0.200, 0.300]"]]
    page = render_html(data, {})
    _, html_tables = parse_page(page)
    for name in ("failures", "fusion", "fusion_tasks", "something_new"):
        assert html_tables[name] == tables[name]


def test_a_run_where_every_trial_failed_still_reports_why(run, tmp_path):
    data = json.loads(json.dumps(run["data"]))
    summary = data["summary"]
    for condition in summary["conditions"]:
        condition.update(n=0, num_failed=2, num_samples=None, test={}, val={}, scores={},
                         failures=[{"seed": 0, "error": "non-finite loss at epoch 1"},
                                   {"seed": 1, "error": "non-finite loss at epoch 1"}])
    for gain in summary["gains"]:
        for key in ("std", "sem", "ci_low", "ci_high", "effect_size", "wilcoxon_p_value"):
            gain.pop(key)
        gain.update(n=0, seeds=[], mean=None, p_value=None, p_value_adjusted=None,
                    verdict="insufficient", note="fewer than 2 seeds finished")
    summary.update(best=None, best_freeze_depth=[], data_efficiency=[], retention=[],
                   rank_agreement=[], stream=[], cka=[], num_failed=summary["num_trials"],
                   curves={"metric": "accuracy", "freeze_depth": [], "train_size": {}})
    paths = write_reports(data, str(tmp_path))
    with open(paths["md"], encoding="utf-8") as file:
        markdown = file.read()
    assert "no verdict" in markdown.splitlines()[4]
    assert len(markdown_tables(markdown)["failures"][1]) == 2 * len(summary["conditions"])
    assert os.listdir(tmp_path / "plots") == ["gains.png"]
    assert "insufficient" in parse_page(render_html(data, {}))[1]["gains"][1][0]


def test_compare_runs_flags_conditions_whose_cis_do_not_overlap(tmp_path):
    def results(backend, scratch, fine_tune):
        def condition(label, stat):
            return {"label": label, "arm": label, "train_size": 30, "num_samples": 30,
                    "test": {"accuracy": stat}}
        return {
            "schema_version": 1, "config": {"name": "parity"}, "context": {},
            "provenance": {"backend": backend}, "trials": [],
            "summary": {"primary_metric": "accuracy", "conditions": [
                condition("scratch", scratch), condition("fine_tune@0", fine_tune)]},
        }

    def stat(mean, half_width):
        return {"mean": mean, "ci_low": mean - half_width, "ci_high": mean + half_width, "n": 3}

    for name, data in (
        ("run_a", results("jax", stat(0.80, 0.02), stat(0.90, 0.01))),
        ("run_b", results("torch", stat(0.81, 0.02), stat(0.70, 0.01))),
    ):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(data))
    text = compare_runs([str(tmp_path / "run_a"), str(tmp_path / "run_b")])
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("condition"))
    assert "jax:run_a" in header and "torch:run_b" in header
    flagged = [line.split()[0] for line in lines if re.match(r"\S+ \*", line)]
    assert flagged == ["fine_tune@0"]
    scratch_line = next(line for line in lines if line.startswith("scratch"))
    assert "*" not in scratch_line and "0.800 [0.780, 0.820]" in scratch_line
    assert any(line.startswith("* = ") and "do not all overlap" in line for line in lines)


def test_write_reports_rejects_an_unknown_format(run, tmp_path):
    with pytest.raises(ConfigError, match="pdf"):
        write_reports(run["data"], str(tmp_path), formats=("pdf",))


def test_each_arm_keeps_one_style_distinct_in_grayscale():
    arms = ["scratch", "fine_tune", "linear_probe", "lp_ft", "l2sp", "random_transfer", "fused"]
    styles = [arm_style(arm) for arm in arms]
    assert len({s["marker"] for s in styles}) == len(arms)
    assert len({str(s["linestyle"]) for s in styles[1:]}) == len(arms) - 1
    variant = arm_style("fine_tune", 1)
    assert variant["color"] == arm_style("fine_tune")["color"]
    assert variant["linestyle"] != arm_style("fine_tune")["linestyle"]


def test_an_unknown_arm_gets_the_same_style_in_every_process():
    code = ("from keras_tl.report.plots import arm_style; "
            "print(sorted(arm_style('my_arm').items()))")
    outputs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=True, env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout
        for seed in (1, 2)
    }
    assert len(outputs) == 1 and "marker" in outputs.pop()


@pytest.mark.skipif(shutil.which("chromium") is None,
                    reason="needs the chromium OS package (installed by .ci/run)")
def test_html_report_renders_in_headless_chromium(run, tmp_path):
    from PIL import Image

    screenshot = tmp_path / "report.png"
    subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         f"--screenshot={screenshot}", "--window-size=1200,2000",
         "file://" + os.path.abspath(run["paths"]["html"])],
        check=True, timeout=120, capture_output=True,
    )
    image = Image.open(screenshot).convert("RGB")
    assert image.size == (1200, 2000)
    colors = image.getcolors(maxcolors=1 << 20)
    assert colors is not None and len(colors) > 50
    background = max(colors)[0]
    assert background < 0.95 * image.size[0] * image.size[1]
