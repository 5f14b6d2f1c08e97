"""An app instrumented with agiflow-sdk 0.0.24, run in that SDK's own virtualenv (.venvs/agiflow-sdk).

Configured only by the SDK's own environment variables (AGIFLOW_BASE_URL, AGIFLOW_API_KEY); it calls a
model through the real ``openai`` client inside a workflow, ties the trace and the span to aliases, then
reports a score and a span update with the SDK's own calls. Prints the answer.
"""

import os
import sys

from agiflow import Agiflow
from agiflow.opentelemetry.trace_decorators.workflow import workflow
from openai import OpenAI

Agiflow.init(app_name="agiflow-sdk-app")
ALIAS = os.environ["APP_TRACE_ALIAS"]


@workflow(name="answer question")
def answer(question: str) -> str:
    Agiflow.associate_trace(ALIAS, "answer-step")
    client = OpenAI(base_url=os.environ["APP_LLM_URL"], api_key="sk-scripted")
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": question}])
    return reply.choices[0].message.content or ""


print(answer(sys.argv[1]))
Agiflow.report_score(ALIAS, 0.8)
Agiflow.update_span("answer-step", {"reviewed": "yes"})
