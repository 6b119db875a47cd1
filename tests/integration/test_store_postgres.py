"""The store's shared suite (tests/unit/store/test_store.c) against a real PostgreSQL: the unit
test program runs again with REELD_TEST_POSTGRES_URL naming a fresh database, so both backends
pass the same cases."""
import os
import subprocess

import pytest

from conftest import ROOT


def test_store_suite_against_postgres(postgres):
    prog = os.path.join(ROOT, "zig-out", "test", "test_store")
    if not os.path.exists(prog):
        pytest.skip("zig-out/test/test_store is missing: run `tools/zig build test` first")
    env = dict(os.environ, REELD_TEST_POSTGRES_URL=postgres.new_database(), REELD_LOG="error")
    r = subprocess.run([prog], env=env, capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr
    assert "# backend postgres" in r.stdout, out
    assert r.returncode == 0, out
    assert "not ok" not in r.stdout, out
