"""Work done off the request path: the event worker, the impression log's writer, training
of the collaborative models and indexing of product embeddings."""
