"""Text written to be run by ansible-core's templating, for the tests that prove alert text never is.

Every form ansible-core 2.19 and Jinja2 accept for turning a string into code: expressions ``{{ }}``, statements
``{% %}`` (with whitespace control), comments ``{# #}`` around live code, line statements and line comments, the
``#jinja2:`` header that overrides the delimiters (ansible-core honours it at the start of a template), the
``!unsafe`` tag as text, ``lookup``/``query``/``q`` and the ``pipe``, ``template`` and ``env`` lookups, filters
and tests that reach Python (``attr``, ``map``), ``{% raw %}`` escapes and our own escape's shape, and unicode
look-alikes (fullwidth braces, zero-width characters). Each one that could run a command tries to create a marker
file, so a test proves nothing ran by finding none; plus seeded random mixes of braces, percent signs, hashes,
quotes, newlines and unicode, which must travel verbatim too.
"""

from __future__ import annotations

import random
from pathlib import Path


def attack_strings(markers: Path, generated: int = 24, seed: int = 9) -> list[str]:
    """The attack table: each string that could run a command would create a file in ``markers``."""

    def touch(name: str) -> str:
        return f"touch {markers / name}"

    table = [
        f"{{{{ lookup('pipe', '{touch('expr')}') }}}}",
        f"{{{{ lookup('ansible.builtin.pipe', '{touch('fqcn')}') }}}}",
        f"{{{{ query('pipe', '{touch('query')}') }}}}",
        f"{{{{ q('pipe', '{touch('q')}') | first }}}}",
        f"{{%- set x = lookup('pipe', '{touch('stmt')}') -%}}done",
        f"{{% for x in [1] %}}{{{{ lookup('pipe', '{touch('loop')}') }}}}{{% endfor %}}",
        f"{{# a comment #}}{{{{ lookup('pipe', '{touch('after_comment')}') }}}}",
        f"{{# {{{{ lookup('pipe', '{touch('in_comment')}') }}}} #}}",
        f"#jinja2: line_statement_prefix: '%'\n% set x = lookup('pipe', '{touch('line_statement')}')\nok",
        f"#jinja2:variable_start_string:'[[', variable_end_string:']]'\n[[ lookup('pipe', '{touch('header')}') ]]",
        f"#jinja2: block_start_string:'<%', block_end_string:'%>'\n<% set x = lookup('pipe', '{touch('hdr_b')}') %>",
        f"## line comment\n# {{{{ lookup('pipe', '{touch('line_comment')}') }}}}",
        f"!unsafe {{{{ lookup('pipe', '{touch('unsafe_tag')}') }}}}",
        f"{{{{ '{{{{' }}}} lookup('pipe', '{touch('our_escape')}') }}}}",
        f"{{% raw %}}{{% endraw %}}{{{{ lookup('pipe', '{touch('raw')}') }}}}",
        f"{{{{ lookup('template', '/etc/hostname') }}}}{{{{ lookup('pipe', '{touch('template')}') }}}}",
        "{{ lookup('env', 'HOME') }} {{ ansible_env | default('') }} {{ hostvars }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        f"{{{{ [ '{touch('map')}' ] | map('ansible.builtin.pipe') | list }}}}",
        "{{ 7 * 7 }} {{ range(10**9) | list }}",
        f"\uff5b\uff5b lookup('pipe', '{touch('fullwidth')}') \uff5d\uff5d",
        f"{{\u200b{{ lookup('pipe', '{touch('zero_width')}') }}\u200b}}",
        f"{{{{\u00a0lookup('pipe', '{touch('nbsp')}')\u00a0}}}}",
        "{{ unclosed",
        "{% if %}",
        "}} %} #} {{{{",
        '"quoted" \'single\' `back` {{ "{{" }}',
        "<!channel> <http://evil.example|click> @here &amp; *bold* _it_",
    ]
    rng = random.Random(seed)
    pieces = ["{", "}", "{{", "}}", "{%", "%}", "{#", "#}", "%", "#", "'", '"', "\n", "\\", " ", "é", "\u202e", "x"]
    for _mix in range(generated):
        table.append("".join(rng.choice(pieces) for _piece in range(rng.randint(4, 24))))
    return table
