"""The shopping assistant: conversation state, message parsers, chat ranking and replies.

``state``, ``vocabulary``, ``parser`` (the rule parser) and ``retrieval``'s filtering and
keyword ranking are pure: they work on the catalog snapshot in memory. Three parts reach
outside through what they are given: ``llm_parser`` and ``reply`` (``LLMReplies``) call the
LLM client, and ``retrieval``'s ``SemanticRanker`` encodes the query with the embedder. The
database and the cache stay out: ``services/chat.py`` loads and saves the conversation,
reads the shopper's history and wires these parts together for each turn.
"""
