"""Infrastructure the use cases stand on: the cache (memory or Redis), the event stream
(in-process queue or Redis Streams) and the outbox that makes stream news survive a crash.
Redis is imported only here."""
