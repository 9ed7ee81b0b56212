"""Engine 3, personalization: recommendations, offers and personalised content (in progress)."""
