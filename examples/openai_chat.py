"""Use an Atoma stack with the official `openai` Python package, unchanged.

The node's agent speaks the OpenAI API; the API key is a stack token the stack's owner signed
(`atoma stack token <stack>`). Prints one chat completion, a streamed one, a text completion and
an embedding, then shows that a wrong key is refused by name.

    python3 -m venv .venv && .venv/bin/pip install -r examples/requirements.txt
    .venv/bin/python examples/openai_chat.py <agent url> <stack token> <model>

`atoma stack show <stack>` names the selected node; `atoma node show <node>` its agent's URL
(`endpoint`).
"""

import sys

import openai
from openai import OpenAI


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    url, token, model = sys.argv[1:]
    client = OpenAI(base_url=url.rstrip("/") + "/v1", api_key=token)

    chat = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "What is the Atoma protocol?"}],
        max_tokens=8,
    )
    print("chat:", chat.choices[0].message.content, f"({chat.usage.total_tokens} units)")

    pieces = []
    usage = None
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Stream it"}],
        max_tokens=6,
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        if chunk.usage is not None:
            usage = chunk.usage
    print("stream:", "".join(pieces), f"({usage.total_tokens} units)")

    text = client.completions.create(model=model, prompt="Once upon a time", max_tokens=4)
    print("completion:", text.choices[0].text, f"({text.usage.total_tokens} units)")

    embedding = client.embeddings.create(model=model, input="compute units")
    print("embedding:", len(embedding.data[0].embedding), "dimensions", f"({embedding.usage.total_tokens} units)")

    stranger = OpenAI(base_url=url.rstrip("/") + "/v1", api_key="sk-not-a-stack-token")
    try:
        stranger.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
    except openai.AuthenticationError as refused:
        print("refused:", refused.status_code, refused.code)
    else:
        print("a wrong key was served", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
