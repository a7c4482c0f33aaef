"""The read path's cache, used by ``serve`` and ``cache warm``: an in-process LRU (``memory``), Redis
(``redis_layer``), the read-through cache over both (``read_through``) and the warm-up that fills them
(``warmup``)."""
