"""factory_boy factories for registry rows that tests need but services do not create."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from registry.models import Team, TeamMembership


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@tally.example")


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"team-{n}")
    name = factory.LazyAttribute(lambda t: t.slug.title())
    email = factory.LazyAttribute(lambda t: f"{t.slug}@tally.example")


class TeamMembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TeamMembership
        django_get_or_create = ("team", "user")

    team = factory.SubFactory(TeamFactory)
    user = factory.SubFactory(UserFactory)
