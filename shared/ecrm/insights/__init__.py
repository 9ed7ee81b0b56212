"""Insights: live counters of campaigns, journeys and channels from the event stream; outcomes for the lake."""
