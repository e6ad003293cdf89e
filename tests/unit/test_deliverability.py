"""The deliverability aggregation: asked once for every dimension; rates of what was sent."""

from processors.deliverability import DIMENSIONS, Row, query, rows


def test_one_query_asks_for_every_dimension_and_filters_the_shop():
    asked = query(1_000, 2_000, "shop-9")
    assert set(asked["aggs"]) == {"all", *DIMENSIONS}
    assert {"term": {"shop_id": "shop-9"}} in asked["query"]["bool"]["filter"]
    assert "variant" in asked["aggs"]["campaign"]["aggs"]
    assert "shop_id" not in str(query(1_000, 2_000)["query"])


def test_no_data_is_empty_tables_and_no_sends_is_no_rate():
    assert rows({"hits": {"total": {"value": 0}}}) == {"all": [], **{n: [] for n in DIMENSIONS}}
    nothing_sent = Row("x", 0, 3, 0, 0, 0, 0, 0, 1, 0, 0)
    assert nothing_sent.rate(3) is None and nothing_sent.as_dict()["delivered_rate"] is None
    assert Row("y", 4, 3, 1, 0, 0, 0, 0, 1, 0, 0).as_dict()["bounced_rate"] == 0.25
