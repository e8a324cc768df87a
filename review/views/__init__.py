"""The review pages, by audience: `annotator` (my queues, the work page), `lead` (a queue's
overview, agreement, disputed items, gold and held out) and `quality` (a project's label
quality, for leads, ML engineers and admins). Their forms are in `review/forms.py`.

Same rules as `review/api.py`: `selectors.access_*` decide who may see what and answer 404
otherwise; `claims` and `services` do every write.
"""
