"""The CMDB health report: completeness, correctness and staleness per class, explained and scored.

``config`` (what is checked), ``rules`` (findings from aggregate store queries), ``scoring``
(shares per class and overall), ``report`` (the report and its snapshot), ``render`` (text).
"""
