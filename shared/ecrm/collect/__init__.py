"""Event collection: the Segment HTTP tracking spec, write keys per source, and the data lake feed.

Web sites and apps keep their analytics SDKs (analytics.js, analytics-python, the mobile SDKs) and
point them at this platform by changing the endpoint and the write key. Accepted events go on the
bus (the customer store stitches anonymous visitors to known customers and keeps the timeline;
segments, journeys and insights consume them) and into the lake.
"""
