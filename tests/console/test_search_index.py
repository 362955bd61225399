"""The command palette's index: what matches a query and in which order (Qt-free)."""

from __future__ import annotations

from console.search_index import Entry, SearchIndex, build_index


def labels(index: SearchIndex, query: str, limit: int = 50) -> list[str]:
    return [e.label for e in index.search(query, limit)]


def test_every_word_must_match_and_an_empty_query_finds_nothing() -> None:
    index = SearchIndex([Entry("node", ("n0001",), "n0001"), Entry("gpu", ("n0001", 3), "n0001 GPU 3"),
                         Entry("tenant", ("hku",), "HKU AI Lab", terms=("hku",))])
    assert labels(index, "") == []
    assert labels(index, "   ") == []
    assert labels(index, "n0001 gpu") == ["n0001 GPU 3"]
    assert labels(index, "n0001 gpu 7") == []
    assert labels(index, "zzz") == []


def test_exact_beats_prefix_beats_word_start_beats_inside() -> None:
    index = SearchIndex([
        Entry("tenant", ("a",), "Kong Research", terms=("a",)),  # "kong" starts the name
        Entry("tenant", ("b",), "The University of Hong Kong", terms=("b",)),  # starts a word
        Entry("tenant", ("c",), "Hongkongers", terms=("c",)),  # inside a word
        Entry("tenant", ("kong",), "Kong", terms=("kong",)),  # exact
    ])
    assert labels(index, "kong") == ["Kong", "Kong Research", "The University of Hong Kong",
                                     "Hongkongers"]


def test_ties_go_to_the_kind_then_the_shorter_name_then_natural_order() -> None:
    index = SearchIndex([Entry("gpu", ("n2", 0), "n2 GPU 0"), Entry("node", ("n10",), "n10"),
                         Entry("node", ("n2",), "n2"), Entry("rack", ("R1",), "rack n-row")])
    # "n" starts every label except the rack's (a later word): nodes first, in natural order
    assert labels(index, "n") == ["n2", "n10", "n2 GPU 0", "rack n-row"]
    assert labels(index, "n", limit=2) == ["n2", "n10"]


def test_other_terms_are_searched_as_well_as_the_label() -> None:
    index = SearchIndex([Entry("job", (4812,), "job 4812 llama-pretrain", terms=("4812", "alice"))])
    assert labels(index, "alice") == ["job 4812 llama-pretrain"]
    assert labels(index, "4812") == ["job 4812 llama-pretrain"]
    assert labels(index, "pretrain") == ["job 4812 llama-pretrain"]


def test_without_a_frame_only_the_panels_are_found() -> None:
    index = build_index(None, [("alerts", "Alerts"), ("jobs", "Job queue")])
    assert [(e.kind, e.key) for e in index.search("queue")] == [("panel", ("jobs",))]
    assert len(index) == 2
