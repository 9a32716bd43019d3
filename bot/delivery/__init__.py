"""Delivery: from a scheduled minute to messages landed exactly once.

`scheduler` runs fetch and post jobs (APScheduler) in each feed's time zone; `sender` plans a
feed's messages into the ledger and sends them, adopting what already landed after a crash;
`notify` and `mentions` add subscriber mentions and DMs (`bot.pacing` keeps the sends under
Discord's rate limits); `feeds` turns feed settings into digest filters; `feed_service` is what
`/digest` does to feeds (validate, create, edit, resume, post now, status) and `feed_render` its
replies."""
