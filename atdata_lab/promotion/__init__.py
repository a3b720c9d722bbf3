"""Promotion: publish a local dataset to an ATProto repository — plan, one atomic write, verify.

:func:`plan_promotion` decides everything without writing: whether the schema is reused,
published or in conflict; the exact records; the data action; the cost. The wizard renders that
plan and :meth:`PromotionPlan.execute` carries it out:

1. the intent (record keys) is saved in the local index;
2. data is copied or uploaded when asked (streamed, verified, resumable);
3. schema (if new), entry and label records are written in ONE ``applyWrites`` call;
4. the local index records what was published.

Records are deterministic for a given entry, name and repository (keys derived from content,
``createdAt`` from the local entry), so a re-run after a crash, or two kernels promoting at once,
converge on exactly one schema, one entry and one label record.

The package:

* :mod:`.plan` — the plan objects, :func:`plan_promotion`, and the checks of typed inputs;
* :mod:`.execute` — carrying a plan out (:class:`PromotionResult`, :class:`PromotionCancelled`,
  the crash points of the crash tests);
* :mod:`.published` — reading back what is published (:func:`load_published`,
  :func:`verify_published`, :func:`get_published_entry`, ...).

Every name is importable from ``atdata_lab.promotion`` as before the split.
"""

from __future__ import annotations

# Names outside __all__ (constants, private helpers, the crash hook of the crash tests) stay importable from
# here, as from the single module before the split.
from .execute import (  # noqa: F401
    _CRASH_ENV,
    PromotionCancelled,
    PromotionResult,
    _crash_point,
    _execute,
    promote_to_atmosphere,
)
from .plan import (  # noqa: F401
    PROMOTED_FIELDS,
    PUBLICATION_TIME_TTL,
    RATE_POINTS,
    SCAN_CACHE_SECONDS,
    DataAction,
    Downgrade,
    FieldChange,
    PDSBlobStore,
    PlannedWrite,
    PromotionPlan,
    RecordChange,
    SchemaDecision,
    check_describe,
    copy_target,
    derived_tid,
    find_published_schema,
    plan_promotion,
    validate_promotion_inputs,
)
from .published import (  # noqa: F401
    PublishedEntry,
    VerificationReport,
    _atmosphere,
    _get,
    _plan_shards,
    _reader,
    _record_uri,
    _state_key,
    describe_storage,
    entry_publication,
    fetch_schema,
    get_published_entry,
    list_published,
    list_published_entries,
    load_published,
    publication_of,
    read_published,
    read_schema_record,
    resolve_entry_uri,
    storage_only_here,
    verify_published,
)

__all__ = [
    "PromotionPlan",
    "PromotionResult",
    "SchemaDecision",
    "DataAction",
    "PlannedWrite",
    "PublishedEntry",
    "RecordChange",
    "FieldChange",
    "Downgrade",
    "PROMOTED_FIELDS",
    "VerificationReport",
    "PDSBlobStore",
    "plan_promotion",
    "validate_promotion_inputs",
    "PromotionCancelled",
    "promote_to_atmosphere",
    "load_published",
    "publication_of",
    "read_published",
    "fetch_schema",
    "get_published_entry",
    "list_published",
    "list_published_entries",
    "verify_published",
    # since the split into plan / execute / published (they were importable before, not listed)
    "check_describe",
    "copy_target",
    "derived_tid",
    "describe_storage",
    "entry_publication",
    "read_schema_record",
    "resolve_entry_uri",
    "storage_only_here",
]
