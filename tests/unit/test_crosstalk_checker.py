"""The browser isolation test's checker reports cross-talk: it is given the real shape of
three sessions' results, then the same results with two sessions' transcripts swapped."""

from __future__ import annotations

import dataclasses

from tests.e2e.crosstalk import SessionView, cross_talk


def isolated() -> list[SessionView]:
    def view(name: str, said: str, heard: str, answer: str) -> SessionView:
        return SessionView(
            name, said, page_user=[heard], socket_user=[heard], stored_user=[heard],
            agent_lines=[f"You said: {heard}. {answer}".strip()], agent_heard=f"you said {heard} {answer}".lower(),
        )

    return [
        view("ana", "My favorite color is green.", "my favorite color is green", "Green is a lovely color."),
        view("ben", "Please turn on the kitchen lights.", "please turn on the kitchen lights", ""),
        # One word misheard ("pizza" → "piece of") stays within the word-share threshold.
        view("cleo", "I would like to order a large pizza.", "i would like to order a large piece of", ""),
    ]


def test_isolated_sessions_pass() -> None:
    assert cross_talk(isolated()) == []


def test_swapped_transcripts_are_reported_as_cross_talk() -> None:
    ana, ben, cleo = isolated()
    swapped = [
        dataclasses.replace(ana, stored_user=ben.stored_user),
        dataclasses.replace(ben, stored_user=ana.stored_user),
        cleo,
    ]
    problems = cross_talk(swapped)
    assert "ana: the database lacks its own words" in "\n".join(problems)
    ana_holds_ben = "ana: the database holds ben's words ['kitchen', 'lights', 'please', 'turn']"
    assert any(p.startswith(ana_holds_ben) for p in problems)
    assert any(p.startswith("ben: the database holds ana's words ['color', 'favorite', 'green']") for p in problems)
    assert not [p for p in problems if p.startswith("cleo")]


def test_one_foreign_word_in_an_agent_reply_heard_by_the_page_is_reported() -> None:
    ana, ben, cleo = isolated()
    leaky = dataclasses.replace(ana, agent_heard=ana.agent_heard + " kitchen")
    assert cross_talk([leaky, ben, cleo]) == ["ana: the agent's audio in the page holds ben's words ['kitchen']"]


def test_a_session_that_heard_nothing_is_reported() -> None:
    ana, ben, cleo = isolated()
    deaf = dataclasses.replace(cleo, page_user=[], socket_user=[], stored_user=[])
    problems = cross_talk([ana, ben, deaf])
    assert [p.split(" lacks")[0] for p in problems] == ["cleo: the page", "cleo: the socket", "cleo: the database"]
