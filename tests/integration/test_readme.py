"""The README's configuration table is the one `reeld --help` prints: every setting, with its
default, so a newcomer reading it reads what the binary does."""
import os
import re
import subprocess

from conftest import ROOT, reeld_bin


def help_settings():
    out = subprocess.run([reeld_bin(), "--help"], capture_output=True, text=True).stdout
    rows = {}
    for line in out.split("Settings", 1)[1].splitlines()[1:]:
        m = re.match(r"\s+([A-Z0-9_]+)(?:, --[a-z-]+)?\s+(\S.*?)\s{2,}", line)
        if m:
            rows[m.group(1)] = m.group(2)
    return rows


def readme_settings():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    rows = {}
    for m in re.finditer(r"^\| `([A-Z0-9_]+)`[^|]*\| `?([^|`]*)`? \|", text, re.M):
        rows[m.group(1)] = m.group(2).strip()
    return rows


def test_every_setting_is_in_the_readme_with_its_default():
    binary, readme = help_settings(), readme_settings()
    assert len(binary) > 50
    missing = sorted(set(binary) - set(readme))
    assert not missing, f"settings `reeld --help` lists but README.md does not: {missing}"
    differ = {k: (binary[k], readme[k]) for k in binary
              if binary[k] != "-" and binary[k] != readme[k]}
    assert not differ, f"defaults that differ (binary, README): {differ}"
    gone = sorted(set(readme) - set(binary))
    assert not gone, f"settings README.md lists that the binary does not know: {gone}"
