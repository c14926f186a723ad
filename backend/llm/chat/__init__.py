"""The shopping assistant's language side: conversation state, message parsers, replies.

Everything here is pure (no I/O): the chat service loads and saves the state, runs the
retrieval and hands these modules the catalog snapshot they validate against.
"""
