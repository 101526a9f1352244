"""The LLM SDK is imported lazily, seen from a fresh process: only when a tier is configured, and never by
the CLI commands that call no LLM. (The tiers themselves are tests/unit/test_llm_tiers.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.servers.fake_llm import FakeLLM


def test_the_sdk_is_imported_only_when_a_tier_is_configured(fake_llm: FakeLLM) -> None:
    code = f"""
import asyncio, sys
import recruiter.cli.main, recruiter.app, recruiter.http.app, recruiter.cli.backtest, recruiter.ingest.plan
from recruiter.llm.client import LLM
from recruiter.settings import LLMEndpoint, settings_from
rules_only = LLM.from_settings(settings_from({{}}))
print("rules only", "openai" in sys.modules)
configured = LLM([LLMEndpoint("llama-swap", "{fake_llm.url}", "m")])
print("configured", "openai" in sys.modules)
async def main():
    answer = await configured.chat([{{"role": "user", "content": "hi"}}])
    await configured.aclose()
    return answer.tier
print("answered by", asyncio.run(main()))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    said = [line for line in result.stdout.splitlines() if line.startswith(("rules", "configured", "answered"))]
    assert said == ["rules only False", "configured True", "answered by llama-swap"]


def test_cli_commands_that_call_no_llm_do_not_import_the_sdk(tmp_path: Path) -> None:
    """Even with a tier configured: migrate, messages, dlq and status never build an LLM client."""
    code = """
import json, sys
from typer.testing import CliRunner
from recruiter.cli.main import app
codes = {}
for args in (["migrate"], ["messages", "--json"], ["dlq", "list", "--json"], ["status", "--json"],
             ["messages", "--help"]):
    codes[" ".join(args)] = CliRunner().invoke(app, args).exit_code
print(json.dumps({"codes": codes, "openai": "openai" in sys.modules}))
"""
    env = {**os.environ, "DB_CONNECTION_STRING": f"sqlite+aiosqlite:///{tmp_path / 'r.db'}",
           "LLAMA_SWAP_URL": "http://127.0.0.1:9", "LLAMA_SWAP_MODEL": "m", "RECRUITER_API_URL": "http://127.0.0.1:9"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False,
                            cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    said = json.loads(result.stdout.strip().splitlines()[-1])
    assert said["codes"]["migrate"] == 0 and said["codes"]["messages --json"] == 0, said
    assert said["openai"] is False
