"""Owners are one person across systems, by e-mail and name, and shown by name."""

from pipesync.metrics.owners import NO_OWNER, people


def shown(*owners: tuple[str | None, str | None]) -> list[str]:
    return people([e for e, _ in owners], [n for _, n in owners])


def test_addresses_and_spellings_of_one_person_are_one_owner_shown_by_name():
    assert set(shown(
        ("marie@northwind.example", None), ("marie.durand@northwind.example", "Marie Durand"), (None, "Durand, Marie"),
        (None, "M. Durand"), ("mdurand@northwind.example", None), ("MARIE.DURAND@northwind.example", "marie durand"),
        (None, "Marie Durand"), (None, "Marié Durand"),
    )) == {"Marie Durand"}


def test_a_name_or_address_that_fits_two_people_joins_neither():
    out = shown(("sam@acme.example", None), (None, "Sam Lee"), (None, "Sam Park"), (None, "S. Lee"),
                ("jlee@acme.example", None), (None, "Jo Lee"), (None, "Jin Lee"))
    assert out == ["sam@acme.example", "Sam Lee", "Sam Park", "Sam Lee", "jlee@acme.example", "Jo Lee", "Jin Lee"]


def test_one_address_joins_the_names_each_system_gives_it():
    out = shown(("minjun.kim@acme.example", "김민준"), ("minjun.kim@acme.example", "Minjun Kim"), (None, "Kim Minjun"))
    assert len(set(out)) == 1 and out[0] in {"Minjun Kim", "Kim Minjun"}


def test_the_name_most_of_a_person_s_deals_carry_is_shown():
    out = shown(*[("bob@acme.example", "Robert Smith")] * 3, ("bob@acme.example", "Bob Smith"), (None, "Bob Smith"))
    assert set(out) == {"Robert Smith"}


def test_no_owner_is_its_own_group():
    assert shown((None, None), ("", " ")) == [NO_OWNER, NO_OWNER]


def test_a_name_written_family_name_first_is_shown_given_name_first():
    assert shown(("hy@acme.example", "Young, Hannah"), ("hy@acme.example", "Young, Hannah")) == ["Hannah Young"] * 2
