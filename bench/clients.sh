#!/usr/bin/env bash
# The clients' next releases, the day they ship: installs the newest Codex CLI (@latest),
# openai, openai-agents and pydantic-ai into a scratch place (never .venv's pins) and runs
# one turn of each against a fresh `kotae serve`, over HTTP and over WebSocket.
# Run on demand (not in CI):  bash bench/clients.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=$(mktemp -d)
trap 'kill "${server:-0}" 2>/dev/null || true; rm -rf "$scratch"' EXIT

python3 -m venv --system-site-packages "$scratch/venv"
"$scratch/venv/bin/pip" install -q --upgrade openai openai-agents "pydantic-ai-slim[openai,openai-realtime]"
npm install --prefix "$scratch/codex" --no-audit --no-fund --silent @openai/codex@latest
"$scratch/venv/bin/pip" list 2>/dev/null | grep -E '^(openai|openai-agents|pydantic-ai-slim) '
echo "codex $("$scratch/codex/node_modules/.bin/codex" --version)"

export KOTAE_DATA_DIR="$scratch/data" KOTAE_PORT="${KOTAE_PORT:-8765}" HF_HUB_OFFLINE=1
.venv/bin/kotae serve --no-access-log > "$scratch/serve.log" 2>&1 &
server=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$KOTAE_PORT/health" >/dev/null && break; sleep 0.2; done
export OPENAI_BASE_URL="http://127.0.0.1:$KOTAE_PORT/v1"
OPENAI_API_KEY=$(grep -o 'sk-kotae-[A-Za-z0-9_-]*' "$scratch/serve.log" | head -1)
export OPENAI_API_KEY

PYTHONPATH= "$scratch/venv/bin/python" - <<'PY'
import asyncio
from openai import OpenAI
from agents import Agent, Runner, set_tracing_disabled
from agents.responses_websocket_session import responses_websocket_session
from pydantic_ai import Agent as PAgent
from pydantic_ai.models.openai import OpenAIResponsesModel, OpenAIResponsesModelSettings

c = OpenAI()
print("openai http:", c.responses.create(model="gpt-4o", input="Say hi.").output_text[:60])
with c.responses.connect() as conn:
    conn.response.create(model="gpt-4o", input="Say hi.")
    for e in conn:
        if e.type in ("response.completed", "response.incomplete", "error"):
            print("openai websocket:", e.type)
            break
set_tracing_disabled(True)
agent = Agent(name="a", instructions="Be brief.", model="gpt-4o")
print("agents http:", Runner.run_sync(agent, "Say hi.").final_output[:60])
async def ws() -> str:
    async with responses_websocket_session() as session:
        return (await session.run(agent, "Say hi.")).final_output
print("agents websocket:", asyncio.run(ws())[:60])
model = OpenAIResponsesModel("gpt-4o")
p = PAgent(model, model_settings=OpenAIResponsesModelSettings(openai_transport="websocket"))
print("pydantic-ai websocket:", p.run_sync("Say hi.").output[:60])
PY

home="$scratch/codex-home"; mkdir -p "$home" "$scratch/work"
printf 'model = "gpt-4o"\nmodel_provider = "kotae"\n[model_providers.kotae]\nname = "kotae"\nbase_url = "%s"\nenv_key = "OPENAI_API_KEY"\nwire_api = "responses"\n' "$OPENAI_BASE_URL" > "$home/config.toml"
(cd "$scratch/work" && CODEX_HOME="$home" timeout 600 "$scratch/codex/node_modules/.bin/codex" exec --skip-git-repo-check "Say hello." </dev/null | tail -3)
echo "codex: turn completed"
