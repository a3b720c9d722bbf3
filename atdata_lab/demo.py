"""``make demo`` / ``python -m atdata_lab.demo``: the promotion tutorial end to end, on the embedded
defaults (SQLite index, local disk store, the sandbox PDS started here and stopped at the end).

Steps: write 1000 ``FeatureSample`` in 2 shards; promote with description, tags and license;
promote a second dataset with the same schema (the schema is reused, not published twice);
verify; load back through the at:// URI and through ``@handle/name``; promote again with nothing
given (the published license and blobs are kept, nothing is written); then the sandbox's AppView
starts (needs Python 3.12; skipped with the reason where it cannot), a second account publishes a
dataset, and the first finds it by search across publishers and loads it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import Any

import numpy as np
from numpy.typing import NDArray

import atdata_lab as atdata


@atdata.packable
class FeatureSample:
    """A feature vector and its class label."""

    features: NDArray
    label: int


def _say(text: str) -> None:
    print(text, flush=True)


def run(home: str) -> int:
    from atdata_lab.atmosphere import Atmosphere
    from atdata_lab.sandbox import Sandbox

    os.environ["ATDATA_HOME"] = home
    t0 = time.perf_counter()
    _say(f"ATDATA_HOME={home}")
    _say("Starting the sandbox PDS (first run installs its Node dependencies)...")
    with Sandbox() as sb:
        os.environ["ATDATA_PDS_URL"] = sb.pds_url
        account = sb.create_account("alice.test")
        _say(f"PDS {sb.pds_url}; account {account.handle} ({account.did})")

        client = Atmosphere.login(account.handle, account.password)
        index = atdata.Index(atmosphere=client, data_store=atdata.LocalDiskStore())
        rng = np.random.default_rng(0)
        samples = [
            FeatureSample(features=rng.standard_normal(128).astype(np.float32), label=i % 10)
            for i in range(1000)
        ]
        entry = index.write(samples, name="feature-vectors-v1", maxcount=500, progress=False)
        _say(
            f"\n1. Wrote {entry.name}: {entry.num_samples} samples in {entry.num_shards} shards, cid {entry.cid}"
        )

        client.round_trips = 0
        plan = index.plan_promotion(
            "feature-vectors-v1",
            description="Feature vectors for classification",
            tags=["features", "embeddings"],
            license="MIT",
        )
        result = plan.execute(progress=False)
        _say("\n2. Promoted feature-vectors-v1")
        _say(f"   schema:  {plan.schema_decision.describe()}")
        _say(f"   dataset: {result.at_uri}")
        _say(f"   label:   {result.label_uri}")
        _say(f"   PDS round trips: {client.round_trips}")

        more = [
            FeatureSample(features=rng.standard_normal(128).astype(np.float32), label=i % 10)
            for i in range(400)
        ]
        index.write(more, name="feature-vectors-v2", maxcount=200, progress=False)
        client.round_trips = 0
        plan2 = index.plan_promotion(
            "feature-vectors-v2",
            description="More feature vectors",
            tags=["features"],
            license="MIT",
            copy_to="blobs",
        )
        result2 = plan2.execute(progress=False)
        schemas = client.list_all_records("science.alt.dataset.schema")
        _say("\n3. Promoted feature-vectors-v2 (data uploaded as PDS blobs)")
        _say(f"   dedup:   {plan2.schema_decision.describe()}")
        _say(f"   schema reused: {result2.schema_reused}; schema records in the repository: {len(schemas)}")
        _say(f"   dataset: {result2.at_uri}")

        _say("\n4. Verification")
        for uri in (result.at_uri, result2.at_uri):
            report = index.verify(uri)
            _say("   " + str(report).replace("\n", "\n   "))

        ds = atdata.load_dataset(result.at_uri, split="train")
        n: int = sum(len(b) for b in ds.ordered(batch_size=32))
        first = next(ds.ordered(batch_size=32))
        _say(f"\n5. Loaded back via at://: {n} samples, first batch features {first.features.shape}")
        ds2 = atdata.load_dataset(f"@{account.handle}/feature-vectors-v2", split="train")
        _say(
            f"   Loaded back via @{account.handle}/feature-vectors-v2: {len(ds2)} samples "
            f"(type {ds2.sample_type.__name__} generated from the published schema)"
        )
        client.round_trips = 0
        again = index.plan_promotion("feature-vectors-v2")  # the plain form, later
        done = again.execute(progress=False)
        _say("\n6. Promoted feature-vectors-v2 again (nothing given)")
        _say(
            f"   {'already published: nothing written, nothing uploaded' if done.already_published else 'WROTE'}; "
            f"license still {again.license!r}, storage: {again.data.describe()}; "
            f"PDS round trips: {client.round_trips}"
        )
        ok = len(schemas) == 1 and n == 1000 and len(ds2) == 400 and done.already_published
        ok = _search_step(sb, index, account) and ok
    _say(
        f"\nSandbox stopped. Done in {time.perf_counter() - t0:.1f} s: {'OK' if ok else 'UNEXPECTED RESULT'}"
    )
    return 0 if ok else 1


def _search_step(sb: Any, index: Any, account: Any) -> bool:
    """Step 7: a second publisher's dataset, found by the first through the AppView and loaded."""
    from atdata_lab.atmosphere import Atmosphere
    from atdata_lab.errors import SandboxError

    _say("\n7. Search across publishers (the sandbox's AppView: PostgreSQL, the bridge, atdata-app)")
    try:
        sb.start_appview()
    except SandboxError as e:
        _say(f"   skipped: {e}")
        return True
    bob = sb.create_account("bob.test")
    bob_client = Atmosphere.login(bob.handle, bob.password, appview=sb.appview_url)
    bob_index = atdata.Index(path=os.path.join(os.environ["ATDATA_HOME"], "bob.db"), atmosphere=bob_client)
    rng = np.random.default_rng(1)
    rows = [
        FeatureSample(features=rng.standard_normal(128).astype(np.float32), label=i % 10) for i in range(300)
    ]
    bob_index.write(rows, name="ocean-features", progress=False)
    uri = bob_index.promote_entry(
        "ocean-features",
        description="Feature vectors from ocean sensors",
        tags=["features", "ocean"],
        progress=False,
    )
    _say(f"   {bob.handle} published ocean-features: {uri}")
    index.atmosphere = Atmosphere.login(account.handle, account.password, appview=sb.appview_url)
    deadline = time.monotonic() + 30
    found: list[Any] = []
    while time.monotonic() < deadline and not found:  # the AppView indexes it within moments
        found = [r for r in index.search("ocean sensors", scope="network").items if r.uri == uri]
        time.sleep(0.2)
    if not found:
        _say("   UNEXPECTED: the AppView did not find it within 30 s")
        return False
    r = found[0]
    _say(
        f'   index.search("ocean sensors", scope="network") found {r.name} by @{r.handle} ({r.num_samples} samples)'
    )
    ds = atdata.load_dataset(f"@{r.handle}/{r.name}", split="train")
    _say(f'   load_dataset("@{r.handle}/{r.name}"): {len(ds)} samples')
    return len(ds) == 300


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", help="ATDATA_HOME to use (default: a temporary folder, removed afterwards)")
    args = ap.parse_args(argv)
    if args.home:
        return run(args.home)
    with tempfile.TemporaryDirectory(prefix="atdata-demo-") as home:
        return run(home)


if __name__ == "__main__":
    sys.exit(main())
