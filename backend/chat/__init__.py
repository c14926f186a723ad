"""The shopping assistant: conversation state, message parsers, chat ranking and replies.

``state`` declares the filters once; ``vocabulary``, ``parser`` (the rule parser), ``scoring``,
``evidence`` and ``ranking``'s filtering and keyword ranking work on the catalog snapshot in
memory. Three parts reach outside through what they are given: ``llm_parser`` and ``replies``
(``LLMReplies``) call the LLM client, and ``ranking``'s ``SemanticRanker`` encodes the query
with the embedder. ``service`` loads and saves the conversation, reads the shopper's history
and runs each turn through these parts; ``schemas`` and ``chips`` are what the shopper gets back.
"""
