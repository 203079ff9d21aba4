"""Answering: the citizen's side of an invitation on the web (`web`), reading forms into
answers (`answers`), the page's CSRF tokens (`csrf`) and the link's rate limit (`throttle`)."""
