"""Collection-level judgement: fields decided together with their neighbours.

A column alone can be ambiguous where its neighbours are not: a latitude beside a longitude, a given
name beside a family name, a street beside a city and a postcode, a country column that tells the
locale of the rest, and the unique id of a collection of people. :func:`judge` runs after every
field of a collection is decided (:meth:`piiguard.classify.engine.Classifier.decide`) and may
revise them; each revision says so in its :class:`piiguard.model.Evidence` (``decided_by="group"``).
"""

from __future__ import annotations

from collections.abc import Sequence

from piiguard.classify.engine import FieldState, link_customer_identifier
from piiguard.model import Classification


def judge(fields: list[Classification], states: dict[str, FieldState],
          primary_key: Sequence[str]) -> list[Classification]:
    """The collection's fields after the group rules; the input order is kept."""
    return link_customer_identifier(fields, states, primary_key)
