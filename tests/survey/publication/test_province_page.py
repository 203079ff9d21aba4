"""The province page a governor's office reads: every agency serving the province once, with
its best available figure (direct where it passes the quality rule, else model-based with an
approximate interval from the model's MSE, labelled so, else no number), its change from the
previous period, its national figure, the province's trend and its standing against the
country; in Persian with no untranslated "RMSE", and in English."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from statistics import NormalDist

import pandas as pd
from litestar.testing import TestClient

from analysis.release import ReleaseTables
from tests.survey.publication import test_publication_pages as pages
from tests.survey.publication.test_publication_pages import Published

computed = pages.computed  # the fixtures: Esfand 1404 and Farvardin 1405, both published
published = pages.published
Z = NormalDist().inv_cdf(0.975)
PERSIAN = str.maketrans("0123456789.-", "۰۱۲۳۴۵۶۷۸۹٫−")


def _index(tables: ReleaseTables, level: str, **where: str) -> pd.DataFrame:
    frame = tables.estimates
    frame = frame[(frame["level"] == level) & (frame["measure"] == "index")]
    for column, value in where.items():
        frame = frame[frame[column] == value]
    return frame


def _serving(tables: ReleaseTables, province: str) -> set[str]:
    direct = set(_index(tables, "agency_province", province=province)["agency"])
    small = tables.small_areas
    return direct | set(small.loc[small["province"] == province, "agency"])


def _provinces(tables: ReleaseTables) -> set[str]:
    cells = set(_index(tables, "agency_province")["province"])
    return (
        cells | set(_index(tables, "province")["province"]) | set(tables.small_areas["province"])
    ) - {""}


def _row(html: str, agency: str) -> str:
    found = re.findall(rf'<tr class="[^"]*" id="row-{re.escape(agency)}">(.*?)</tr>', html, re.S)
    assert len(found) == 1, f"{agency}: {len(found)} rows"
    return str(found[0])


def _cell(row: str, label: str) -> str:
    match = re.search(rf'<td data-label="{re.escape(label)}"[^>]*>(.*?)</td>', row, re.S)
    assert match is not None, f"no cell {label!r}"
    return re.sub(r"<[^>]+>", "", match[1])


def _one(html: str, agency: str, label: str) -> str:
    return _cell(_row(html, agency), label)


def _f(value: float) -> str:
    return f"{value:.1f}"


class _Text(HTMLParser):
    """The page's visible text, leaving out what is marked as another language."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        other = dict(attrs).get("lang") not in (None, "fa")
        if tag in ("style", "script", "title") or self._skip or other:
            self._skip.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._skip and self._skip[-1] == tag:
            self._skip.pop()

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _visible(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(parser.parts)


def test_every_agency_serving_the_province_once_with_its_best_figure(
    client: TestClient, published: Published
) -> None:
    tables = published.tables
    small = tables.small_areas.set_index(["agency", "province"])
    seen_kinds = set()
    for province in sorted(_provinces(tables)):
        html = client.get(f"/provinces/{province}?lang=en").text
        assert html.count('id="row-') == len(_serving(tables, province)), province
        for agency in _serving(tables, province):
            row = _row(html, agency)
            direct = _index(tables, "agency_province", agency=agency, province=province)
            passes = not direct.empty and not bool(direct["suppressed"].iloc[0])
            cell = small.loc[(agency, province)] if (agency, province) in small.index else None
            if passes:
                seen_kinds.add("direct")
                r = direct.iloc[0]
                assert _cell(row, "Satisfaction index") == _f(r["estimate"])
                assert _cell(row, "95% interval") == f"{_f(r['ci_low'])}–{_f(r['ci_high'])}"
                assert "direct (survey)" in _cell(row, "Basis")
            elif cell is not None and cell["used"] == "model":
                seen_kinds.add("model")
                low = max(0.0, cell["model"] - Z * cell["model_rmse"])
                high = min(100.0, cell["model"] + Z * cell["model_rmse"])
                assert _cell(row, "Satisfaction index") == _f(cell["model"])
                assert _cell(row, "95% interval") == f"{_f(low)}–{_f(high)}"
                assert "model-based" in _cell(row, "Basis")
                assert "approximate interval from the model" in _cell(row, "Basis")
            else:
                seen_kinds.add("none")
                assert 'class="suppressed"' in _row_tag(html, agency)
                assert "too few responses" in row
        if 'class="basis-model"' in html:
            assert "root mean squared error (RMSE)" in html  # the label says what it is
            assert "1.96 times" in html
    assert seen_kinds == {"direct", "model", "none"}  # the fixture exercises all three


def _row_tag(html: str, agency: str) -> str:
    match = re.search(rf'<tr[^>]*id="row-{re.escape(agency)}">', html)
    assert match is not None
    return match[0]


def test_changes_are_the_releases_where_both_are_direct_and_approximate_otherwise(
    client: TestClient, published: Published, computed: tuple[ReleaseTables, ReleaseTables]
) -> None:
    before, now = computed
    html = client.get("/provinces/KHR?lang=en").text
    label = "Change from Esfand 1404"
    assert f'<th scope="col">{label}</th>' in html
    # TAX in KHR: direct in both months -> the release's own design-based change
    tax = _index(now, "agency_province", agency="TAX", province="KHR").iloc[0]
    cell = _one(html, "TAX", label)
    assert f"{tax['change']:+.1f}" in cell and "approx." not in cell
    # EDU in KHR: direct now, model-based in Esfand -> the difference, marked approximate
    edu_now = _index(now, "agency_province", agency="EDU", province="KHR").iloc[0]
    old = before.small_areas.set_index(["agency", "province"]).loc[("EDU", "KHR")]
    assert old["used"] == "model"
    change = edu_now["estimate"] - old["model"]
    half = Z * (edu_now["se"] ** 2 + old["model_rmse"] ** 2) ** 0.5
    cell = _one(html, "EDU", label)
    assert f"{change:+.1f}" in cell and "approx." in cell
    assert f"{change - half:+.1f} to {change + half:+.1f}" in cell
    # POS has no figure in either month: no number but its responses
    pos = _row(html, "POS")
    assert '<td colspan="5" class="too-few"' in pos and "too few responses" in pos
    assert "change" not in pos.lower()


def test_against_the_country_and_the_agencys_national_figure(
    client: TestClient, published: Published
) -> None:
    tables = published.tables
    html = client.get("/provinces/THR?lang=en").text
    assert "<h1>Tehran " in html
    national = _index(tables, "national").iloc[0]
    own = _index(tables, "province", province="THR").iloc[0]
    assert "National index" in html and _f(national["estimate"]) in html
    assert f"{own['estimate'] - national['estimate']:+.1f}" in html
    for agency in ("TAX", "EDU", "HLT"):
        country = _index(tables, "agency", agency=agency).iloc[0]
        cell = _one(html, agency, "Same agency nationally")
        assert cell.startswith(_f(country["estimate"])), (agency, cell)
        assert any(w in cell for w in ("higher", "lower", "no clear difference"))


def test_the_provinces_trend_over_the_published_periods(
    client: TestClient, published: Published, computed: tuple[ReleaseTables, ReleaseTables]
) -> None:
    before, now = computed
    html = client.get("/provinces/THR?lang=en").text
    trend = html.split("The province&#39;s index over the published periods", 1)[1]
    for tables, period, release in (
        (before, "Esfand 1404", published.previous_id),
        (now, "Farvardin 1405", published.current_id),
    ):
        row = _index(tables, "province", province="THR").iloc[0]
        assert period in trend and _f(row["estimate"]) in trend
        assert f'href="/releases/{release}/provinces/THR?lang=en"' in trend
    assert '<svg class="trend"' in trend
    # the stable address of the older release has a trend of its own period only
    old = client.get(f"/releases/{published.previous_id}/provinces/THR?lang=en").text
    assert "Only one period has been published." in old


def test_every_province_page_in_persian_says_it_all_in_persian(
    client: TestClient, published: Published
) -> None:
    tables = published.tables
    codes = set(tables.estimates["agency"]) | _provinces(tables)
    for province in sorted(_provinces(tables)):
        answer = client.get(f"/provinces/{province}")
        assert answer.status_code == 200
        html = answer.text
        assert '<html lang="fa" dir="rtl">' in html
        text = re.sub(r"/[\w/.\-]+", " ", _visible(html))  # addresses such as /releases/2
        assert "RMSE" not in text and "RMSE" not in html.split("<main", 1)[1]
        words = set(re.findall(r"[A-Za-z][A-Za-z_.\-]*", text))
        unexpected = words - codes - {"A", "B", "C", "CSV"}
        assert not unexpected, (province, sorted(unexpected))
        gregorian = re.sub(r"\b\d{4}-\d{2}-\d{2}\b", "", text)  # shown beside Solar Hijri
        assert not re.search(r"[0-9]", gregorian), province
        if 'class="basis-model"' in html:
            assert "ریشه میانگین مربع خطا" in text and "۱٫۹۶" in text
    model = tables.small_areas
    cell = model[(model["province"] == "TBZ") & (model["agency"] == "TAX")].iloc[0]
    html = client.get("/provinces/TBZ").text
    assert _f(cell["model"]).translate(PERSIAN) in _row(html, "TAX")


def test_an_unknown_province_is_a_friendly_404(client: TestClient, published: Published) -> None:
    for path in ("/provinces/NOWHERE", f"/releases/{published.current_id}/provinces/NOWHERE"):
        answer = client.get(path + "?lang=en")
        assert answer.status_code == 404
        assert "NOWHERE" in answer.text and "<h1>" in answer.text
