#!/usr/bin/env python3
"""A tiny scripted LSP server used only by testkit's own tests of the LSP client.

It speaks real Content-Length framing on stdio and keeps its own copy of each document from
didOpen/didChange, echoing it back as a `fake/text` notification so a test can check that the
client's incremental changes describe the client's text exactly. `workspace/executeCommand`
`fake.edit` runs a job like baton's: create a progress token, begin, an applyEdit for the current
version, an applyEdit for a stale version, end. Arguments pick faults to inject.
"""
import json
import sys

stdin = sys.stdin.buffer
stdout = sys.stdout.buffer
documents = {}  # uri -> [version, text]
encoding = "utf-16"
stale_edit = True
next_id = 1000


def units(ch):
    if encoding == "utf-8":
        return len(ch.encode("utf-8"))
    if encoding == "utf-16":
        return len(ch.encode("utf-16-le")) // 2
    return 1


def offset(text, position):
    lines = text.split("\n")
    line, character = position["line"], position["character"]
    start = sum(len(l) + 1 for l in lines[:line])
    if line >= len(lines):
        return len(text)
    count = 0
    for index, ch in enumerate(lines[line]):
        if count >= character:
            return start + index
        count += units(ch)
    return start + len(lines[line])


def send(message):
    message["jsonrpc"] = "2.0"
    body = json.dumps(message).encode("utf-8")
    stdout.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    stdout.flush()


def read():
    length = None
    while True:
        line = stdin.readline()
        if not line:
            sys.exit(0)
        line = line.strip()
        if not line:
            break
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return json.loads(stdin.read(length))


def call(method, params):
    """Sends a request and handles other messages until its response arrives."""
    global next_id
    next_id += 1
    my_id = next_id
    send({"id": my_id, "method": method, "params": params})
    while True:
        message = read()
        if message.get("id") == my_id and "method" not in message:
            return message
        handle(message)


def echo(uri):
    version, text = documents[uri]
    send({"method": "fake/text", "params": {"uri": uri, "version": version, "text": text}})


def run_job(uri, faults):
    if "garbage" in faults:
        stdout.write(b"this is not an LSP frame\n")
        stdout.flush()
    if "unknown_request" in faults:
        call("fake/unknownRequest", {})
    if "uncreated_progress" in faults:
        send({"method": "$/progress", "params": {"token": "never-created", "value": {"kind": "begin", "title": "x"}}})
    call("window/workDoneProgress/create", {"token": "job-1"})
    send({"method": "$/progress", "params": {"token": "job-1", "value": {"kind": "begin", "title": "Editing"}}})
    version, text = documents[uri]
    first_line_end = text.find("\n")
    end_character = sum(units(ch) for ch in text[:first_line_end])
    edit = {"documentChanges": [{
        "textDocument": {"uri": uri, "version": version},
        "edits": [{"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": end_character}}, "newText": "EDITED"}],
    }]}
    first = call("workspace/applyEdit", {"label": "first", "edit": edit})
    second = {"result": None}
    if stale_edit:
        edit["documentChanges"][0]["edits"][0]["newText"] = "STALE"
        second = call("workspace/applyEdit", {"label": "stale", "edit": edit})
    if "show_message_request" in faults:
        answer = call("window/showMessageRequest", {"type": 3, "message": "pick", "actions": [{"title": "Yes"}, {"title": "No"}]})
        send({"method": "window/logMessage", "params": {"type": 4, "message": "showMessageRequest answer: " + json.dumps(answer)}})
    send({"method": "window/logMessage", "params": {"type": 4, "message": "answers: " + json.dumps([first.get("result"), second.get("result")])}})
    send({"method": "$/progress", "params": {"token": "job-1", "value": {"kind": "end", "message": "done"}}})


def handle(message):
    global encoding, stale_edit
    method = message.get("method")
    params = message.get("params") or {}
    if method == "initialize":
        offered = params["capabilities"].get("general", {}).get("positionEncodings", ["utf-16"])
        options = params.get("initializationOptions") or {}
        wanted = options.get("encoding", "utf-16")
        stale_edit = options.get("stale_edit", True)
        encoding = wanted if wanted in offered else "utf-16"
        send({"id": message["id"], "result": {"capabilities": {
            "positionEncoding": encoding,
            "textDocumentSync": {"openClose": True, "change": 2},
            "codeActionProvider": True,
            "executeCommandProvider": {"commands": ["fake.edit"]},
        }}})
    elif method == "textDocument/didOpen":
        document = params["textDocument"]
        documents[document["uri"]] = [document["version"], document["text"]]
        echo(document["uri"])
    elif method == "textDocument/didChange":
        uri = params["textDocument"]["uri"]
        text = documents[uri][1]
        for change in params["contentChanges"]:
            if "range" in change:
                start = offset(text, change["range"]["start"])
                end = offset(text, change["range"]["end"])
                text = text[:start] + change["text"] + text[end:]
            else:
                text = change["text"]
        documents[uri] = [params["textDocument"]["version"], text]
        echo(uri)
    elif method == "textDocument/codeAction":
        uri = params["textDocument"]["uri"]
        send({"id": message["id"], "result": [{"title": "fake: edit", "command": {"title": "fake: edit", "command": "fake.edit", "arguments": [uri, []]}}]})
    elif method == "workspace/executeCommand":
        send({"id": message["id"], "result": None})
        uri, faults = params["arguments"]
        run_job(uri, faults)
    elif method == "shutdown":
        send({"id": message["id"], "result": None})
    elif method == "exit":
        sys.exit(0)
    elif "id" in message and method is not None:
        send({"id": message["id"], "error": {"code": -32601, "message": "unknown " + method}})


while True:
    handle(read())
