"""The dead-letter queue from the outside: a poison message and an LLM rejection end dead with a reason,
can be listed and shown with their history, and are processed after `recruiter dlq retry`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.mailfactory import make_mail
from tests.servers.fake_llm import FakeLLM
from tests.support.service import recruiter


def jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_poison_message_is_dead_with_reason_and_others_flow(tmp_path: Path) -> None:
    mail = tmp_path / "in"
    mail.mkdir()
    (mail / "01-poison.eml").write_bytes(b"")
    (mail / "02-good.eml").write_bytes(make_mail())
    result = recruiter(tmp_path, {}, "process", str(mail))
    assert result.returncode == 0, result.stderr
    dead = jsonl(recruiter(tmp_path, {}, "dlq", "list", "--json").stdout)
    assert [d["dead_reason"] for d in dead] == ["unparseable"]
    states = {m["subject"]: m["state"] for m in jsonl(recruiter(tmp_path, {}, "messages", "--json").stdout)}
    assert states["Staff SRE role at Acme"] == "done"
    shown = json.loads(recruiter(tmp_path, {}, "dlq", "show", str(dead[0]["id"])).stdout)
    assert shown["history"][0]["stage"] == "ingest"  # quarantined as it was stored
    assert shown["history"][0]["error_class"] == "UnparseableMail"


def test_llm_rejection_goes_dead_then_redrive_processes_it_once(tmp_path: Path, fake_llm: FakeLLM) -> None:
    env = {"LLAMA_SWAP_URL": fake_llm.url, "LLAMA_SWAP_MODEL": "qwen3-8b"}
    path = tmp_path / "offer.eml"
    path.write_bytes(make_mail(subject="Recruiting: Staff SRE at Acme"))
    too_long = {"error": {"message": "This model's maximum context length is 8192 tokens.", "param": "messages",
                          "code": "context_length_exceeded", "type": "invalid_request_error"}}
    fake_llm.script(FakeLLM.Status(400, too_long))  # about this mail, not the tier: dead at once
    assert recruiter(tmp_path, env, "process", str(path)).returncode == 0
    dead = jsonl(recruiter(tmp_path, env, "dlq", "list", "--json").stdout)
    assert len(dead) == 1 and dead[0]["dead_reason"] == "llm_4xx" and dead[0]["stage"] == "triage"
    assert "400 Bad Request from llama-swap (qwen3-8b)" in dead[0]["last_error"]

    dry = recruiter(tmp_path, env, "dlq", "retry", "--all", "--dry-run")
    assert "would redrive" in dry.stdout
    assert len(jsonl(recruiter(tmp_path, env, "dlq", "list", "--json").stdout)) == 1

    fake_llm.fail_all(None)
    retried = recruiter(tmp_path, env, "dlq", "retry", str(dead[0]["id"]))
    assert retried.returncode == 0, retried.stderr
    processed = recruiter(tmp_path, env, "process")
    assert processed.returncode == 0, processed.stderr
    assert processed.stdout.count("/cb/send?") == 1
    row = jsonl(recruiter(tmp_path, env, "messages", "--json").stdout)[0]
    assert (row["state"], row["attempts"]) == ("done", 0)
    shown = json.loads(recruiter(tmp_path, env, "dlq", "show", str(row["id"])).stdout)
    assert [h["error_class"] for h in shown["history"]] == ["PermanentError"]  # history kept
    assert len(list((tmp_path / "drafts").glob("*.eml"))) == 1
    assert recruiter(tmp_path, env, "dlq", "retry", "999").returncode == 1


def test_purge_removes_only_old_dead_messages(tmp_path: Path) -> None:
    (tmp_path / "poison.eml").write_bytes(b"")
    recruiter(tmp_path, {}, "process", str(tmp_path / "poison.eml"))
    assert "purged 0" in recruiter(tmp_path, {}, "dlq", "purge", "--older-than", "1").stdout
    assert "purged 1" in recruiter(tmp_path, {}, "dlq", "purge", "--older-than", "0").stdout
    assert jsonl(recruiter(tmp_path, {}, "dlq", "list", "--json").stdout) == []
