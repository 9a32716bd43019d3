"""How a subscription reads in replies (pure: no store, no Discord)."""

from __future__ import annotations

from bot.models import Subscription
from bot.text import sanitize


def describe(subscription: Subscription) -> str:
    """One line naming what the subscription matches and how it is delivered."""
    where = " (by DM)" if subscription.dm else ""
    if subscription.subscriber_type == "role":
        where = f" for <@&{subscription.subscriber_id}> (in one digest channel)"
    elif subscription.feed_id:
        where += " (one feed)"
    return f"{sanitize(subscription.label, markdown=False)}{where}"


def choice_name(subscription: Subscription) -> str:
    """The name an autocomplete choice shows for a subscription."""
    return subscription.label + (" (role)" if subscription.subscriber_type == "role" else "")
