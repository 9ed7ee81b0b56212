"""The platform slice: health, identity echo and end-to-end pings of the event plumbing.

A ping is the operator's smoke test after a deploy: `POST /pings` publishes `PingRequested`, the
bus routes it to the platform queue, a consumer records it in the platform table, and
`GET /pings/{id}` shows it arrived and how long the trip took.
"""
