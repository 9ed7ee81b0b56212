"""The personalization engine's contract: its events (the offer models live in `offers`)."""

from ecrm.personalization.offers import OfferAccepted, OfferCreated, OfferExhausted, OfferPresented

__all__ = ["OfferAccepted", "OfferCreated", "OfferExhausted", "OfferPresented"]
