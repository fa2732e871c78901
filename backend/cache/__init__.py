"""What the service remembers: results and URL entries in process or in Redis (``store``), behind
timeouts and a circuit breaker (``breaker``); the counters kept there: rate limits
(``ratelimit``) and each client's URL entries (``url_entries``)."""
