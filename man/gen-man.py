#!/usr/bin/env python3
"""man/gen-man.py - the manual pages of nbdaio, generated from the one place
each contract is written.

  gen-man.py man3 HEADER TEMPLATE OUTDIR
                                      OUTDIR holds exactly the man3 pages:
                                      a page per group of calls that share
                                      one contract comment in HEADER, a
                                      ".so" link for every other call, and
                                      nbdaio.3 filled in from TEMPLATE
  gen-man.py page HEADER TEMPLATE OUT fill a hand-written page's @NAME@
                                      placeholders from HEADER (and
                                      --options FILE: fio-plugin/options.c)

How HEADER (core/nbdaio.h) is read:
  - "/* ---- title ---- */" starts a section;
  - a comment directly above NBDAIO_API declarations is their contract;
    declarations that follow without a comment of their own share it (one
    page, the others link to it);
  - a comment followed by a blank line, by another comment or by a
    forward "struct x;" is a note for the calls after it in its section;
  - typedefs and structs with a body, and #define blocks, are types and
    constants: a page shows those its prototypes use or its text names;
  - the file's first comment is its preamble: the list after
    "Conventions" goes into nbdaio(3), with the callback types, the
    settings table of nbdaio_set_option's comment and a list of the calls.
"""

import errno
import os
import re
import sys

SECTION_RE = re.compile(r'^/\* -{4} (.*?) -+ \*/$')
IDENT_RE = re.compile(r'\bnbdaio_[a-z0-9_]+\b')


class Block:
    """A contract comment with what it describes."""

    def __init__(self, kind, comment, section):
        self.kind = kind          # 'calls', 'type' or 'const'
        self.comment = comment    # list of lines, '' if none
        self.section = section
        self.notes = []           # section notes in force
        self.lines = []           # the declarations, as written
        self.names = []           # called functions / type / macro names


def comment_text(lines):
    """The text of a /* ... */ comment, without its frame."""
    out = []
    for i, line in enumerate(lines):
        s = line.rstrip()
        if i == 0:
            s = s[s.index('/*') + 2:]
            s = s[1:] if s.startswith(' ') else s
        else:
            s = re.sub(r'^\s*\*( |$)', '', s, count=1)
        if s.endswith('*/'):
            s = s[:-2].rstrip()
        out.append(s)
    while out and not out[-1].strip():
        out.pop()
    return out


def statements(path):
    """Split HEADER into ('blank'|'section'|'comment'|'decl'|'type'|
    'const'|'fwd'|'other', lines) items, in order."""
    with open(path, encoding='utf-8') as f:
        lines = f.read().split('\n')
    i, items = 0, []
    while i < len(lines):
        line = lines[i]
        s = line.strip()
        if not s:
            items.append(('blank', [line]))
            i += 1
        elif s.startswith('/*'):
            j = i
            while '*/' not in lines[j]:
                j += 1
            m = SECTION_RE.match(s)
            if m and i == j:
                items.append(('section', [m.group(1)]))
            else:
                items.append(('comment', lines[i:j + 1]))
            i = j + 1
        elif s.startswith('#define NBDAIO_') and not s.startswith(
                ('#define NBDAIO_API', '#define NBDAIO_H')):
            items.append(('const', [line]))
            i += 1
        elif s.startswith(('NBDAIO_API', 'typedef', 'struct', 'enum',
                           'union')):
            j, depth = i, 0
            while True:
                depth += lines[j].count('{') - lines[j].count('}')
                if depth == 0 and lines[j].rstrip().endswith(';'):
                    break
                j += 1
            body = lines[i:j + 1]
            if s.startswith('NBDAIO_API'):
                kind = 'decl'
            elif s.startswith(('struct', 'enum', 'union')) \
                    and '{' not in ' '.join(lines[i:j + 1]):
                kind = 'fwd'
            else:
                kind = 'type'
            items.append((kind, body))
            i = j + 1
        else:
            items.append(('other', [line]))
            i += 1
    return lines, items


def decl_name(body):
    text = re.sub(r'\s+', ' ', ' '.join(body))
    m = re.search(r'(nbdaio_[a-z0-9_]+)\s*\(', text)
    return m.group(1)


def type_name(body):
    text = ' '.join(body)
    m = re.search(r'\(\s*\*\s*(nbdaio_\w+)\s*\)', text)   # function pointer
    if m:
        return m.group(1)
    m = re.search(r'^\s*(?:struct|enum|union)\s+(nbdaio_\w+)', text)
    if m:
        return text.split()[0] + ' ' + m.group(1)
    m = re.search(r'(nbdaio_\w+)\s*;\s*$', text)   # typedef ... name;
    return m.group(1) if m else text.split()[1]


def parse(path):
    """The header's preamble and its blocks, in order."""
    _, items = statements(path)
    blocks, notes, pending, current = [], [], [], None
    section, preamble = '', None
    prev = None
    if items and items[0][0] == 'comment':
        preamble = comment_text(items[0][1])
    for kind, body in items[1:]:
        if kind == 'section':
            section, notes, pending, current = body[0], [], [], None
        elif kind == 'blank':
            if section:
                notes = notes + [comment_text(c) for c in pending]
            pending, current = [], None
        elif kind == 'comment':
            pending.append(body)
            current = None
        elif kind == 'fwd':
            if current is not None and current.kind == 'const' \
                    and prev == 'const' and current.comment:
                notes = notes + [current.comment]
                current.comment = ''
            notes = notes + [comment_text(c) for c in pending]
            pending, current = [], None
        elif kind in ('decl', 'type', 'const'):
            bkind = {'decl': 'calls'}.get(kind, kind)
            name = {'decl': decl_name, 'type': type_name,
                    'const': lambda b: b[0].split()[1]}[kind](body)
            if pending or current is None or current.kind != bkind:
                notes = notes + [comment_text(c) for c in pending[:-1]]
                comment = comment_text(pending[-1]) if pending else ''
                current = Block(bkind, comment, section)
                current.notes = list(notes)
                blocks.append(current)
                pending = []
            current.lines.extend(body)
            current.names.append(name)
        else:
            pending, current = [], None
        prev = kind
    return preamble or [], blocks


# ---- roff ------------------------------------------------------------------

def esc(s):
    s = s.replace('\\', '\\e')
    if s.startswith(('.', "'")):
        s = '\\&' + s
    return s


def prose(lines):
    """roff for comment text: paragraphs, "- " lists, and indented runs
    (tables, errno lists) kept as written."""
    out, mode = [], None
    for line in lines:
        indent = len(line) - len(line.lstrip())
        s = line.strip()
        if not s:
            if mode == 'nf':
                out += ['.fi', '.RE']
            mode = None
            out.append('.PP')
        elif s.startswith('- ') and indent <= 3:
            if mode == 'nf':
                out += ['.fi', '.RE']
            out += ['.IP \\(bu 2', esc(s[2:])]
            mode = 'item'
        elif indent >= 2 and mode == 'item':
            out.append(esc(s))
        elif indent >= 2:
            if mode != 'nf':
                out += ['.RS 2', '.nf']
                mode = 'nf'
            out.append(esc(line[2:].rstrip()))
        else:
            if mode == 'nf':
                out += ['.fi', '.RE', '.PP']
            elif mode == 'item':
                out.append('.PP')
            mode = 'text'
            out.append(esc(s))
    if mode == 'nf':
        out += ['.fi', '.RE']
    return out


def code(lines, strip_api=True):
    out = ['.RS 2', '.nf']
    for line in lines:
        if strip_api and line.startswith('NBDAIO_API '):
            line = line[len('NBDAIO_API '):]
        elif strip_api and line.startswith(' ' * 11):
            line = line[11:]
        out.append(esc(line.rstrip()))
    return out + ['.fi', '.RE']


ABBREVIATIONS = ('e.g.', 'i.e.', 'vs.', 'etc.')


def first_clause(text):
    """text up to the end of its first sentence (". ") or clause (": ",
    "; "), leaving out what stands in parentheses or quotes there."""
    out, depth, quoted = [], 0, False
    for i, c in enumerate(text):
        end = i + 1 == len(text) or text[i + 1].isspace()
        if c == '"' and depth == 0:
            quoted = not quoted
        elif not quoted and c == '(':
            depth += 1
        elif not quoted and c == ')' and depth > 0:
            depth -= 1
            continue
        elif not quoted and depth == 0 and c in '.:;' and end and \
                not text[:i + 1].endswith(ABBREVIATIONS):
            break
        if depth == 0:
            out.append(c)
    text = re.sub(r'\s+', ' ', ''.join(out)).strip()
    return re.sub(r' ([,.])', r'\1', text)


def summary(block):
    """NAME's one line: the first sentence of the contract comment up to
    its first ":" or ";", without what stands in parentheses, its first
    word lowercased unless it is a name (NBD_OPT_GO, TLS).  So a comment
    opens with a short sentence saying what the call does; check-pages.sh
    fails a page whose line is empty or too long."""
    text = ' '.join(s.strip() for s in block.comment if s.strip())
    first = first_clause(text)
    if GETTER_RE.match(first):
        first = 'return ' + first[0].lower() + \
            re.split(r', (?:or|and) ', first)[0][1:]
    if re.match(r'^(?:[A-Z][a-z]+|A)(?=\s)', first):    # not I/O, TLS
        first = first[0].lower() + first[1:]
    return first


ERRNOS = set(errno.errorcode.values())
NEVER_FAILS = re.compile(r'\bNever fails?\b')
BARE_ERRNOS = {'ENOMEM': 'out of memory'}
GETTER_RE = re.compile(r'^(?:The|Whether|How many|Number of|Which way|What)\b')
PAREN = r'\(((?:[^()]|\([^()]*\))*)\)'


def errors(lines):
    """{errno: why}: the explanations the text gives in a form that cannot
    be misread: an indented list "  EINVAL  why"; "Errors: EINVAL (why),
    ENOMEM" (also after "-1: ", "besides: ", "errno: "); "-1 (EINVAL) if
    why" (also "-1 with EINVAL for why", "-1, EINVAL before ..."); "(EINVAL
    when why)"; "only before connecting (else -1, EINVAL)".  An errno the
    text only names (a command's ENOTCONN in a setter's text) is none of
    the call's errors."""
    listed, text, used = {}, [], set()
    for i, line in enumerate(lines):
        m = re.match(r'^\s{2,}(E[A-Z0-9]+)\s+([^\s(].*)$', line)
        if i in used or not m or m.group(1) not in ERRNOS:
            text.append(line.strip())
            continue
        why = [m.group(2)]
        for j in range(i + 1, len(lines)):
            if not re.match(r'^\s{4,}\S', lines[j]) or \
                    re.match(r'^\s{2,}E[A-Z0-9]+\s', lines[j]):
                break
            why.append(lines[j].strip())
            used.add(j)
        listed[m.group(1)] = ' '.join(why)
    text = ' '.join(text)
    when = r'(?:only )?(?:(?:if|for|when) |(?=(?:before|after|while) ))'
    for e in re.finditer(r'(?:-1|NULL),? (?:with )?\(?(E[A-Z0-9]+)\)? '
                         + when + r'([^.;,()]+)', text):
        if e.group(1) in ERRNOS:
            add_reason(listed, e.group(1), e.group(2))
    for e in re.finditer(r'(?:-1|NULL) \((E[A-Z0-9]+)\)', text):
        if e.group(1) in BARE_ERRNOS:
            add_reason(listed, e.group(1), BARE_ERRNOS[e.group(1)])
    for e in re.finditer(r'\((E[A-Z0-9]+) (?:if|when) ([^(),]+)\)', text):
        if e.group(1) in ERRNOS:
            add_reason(listed, e.group(1), e.group(2))
    for m in re.finditer(r'(?:\bErrors|-1|\bbesides|\berrno): ', text):
        run = sentence_from(text, m.end())
        for e in re.finditer(r'\b(E[A-Z0-9]+)(?:\s*' + PAREN
                             + r'|(?=[,.;]|$))', run):
            why = e.group(2) or BARE_ERRNOS.get(e.group(1))
            if e.group(1) in ERRNOS and why:
                add_reason(listed, e.group(1), why)
    for e in re.finditer(r'\b[Oo]nly (before [a-z ]+?),? \(?else -1,? '
                         r'\(?(E[A-Z0-9]+)\)?', text):
        if e.group(2) in ERRNOS:
            listed.setdefault(e.group(2), 'the call is allowed only '
                              + e.group(1))
    for e in re.finditer(r'-1 with (E[A-Z0-9]+) ' + PAREN, text):
        if e.group(1) in ERRNOS:
            listed.setdefault(e.group(1), e.group(2))
    return listed


def add_reason(listed, errno_name, why):
    """listed[errno_name] gets why, after the reasons it has already."""
    mine = listed.get(errno_name)
    if mine is None:
        listed[errno_name] = why
    elif why not in mine and mine not in why:
        listed[errno_name] = mine + '; ' + why


def sentence_from(text, start):
    """text from start to the end of its sentence (a "." followed by a
    space or the end, outside parentheses)."""
    depth = 0
    for i in range(start, len(text)):
        c = text[i]
        depth += (c == '(') - (c == ')')
        if depth <= 0 and c in '.;' and (i + 1 == len(text) or
                                          text[i + 1].isspace()):
            return text[start:i]
    return text[start:]


def each_returns(comment):
    """The sentence of a group's comment saying what each call returns
    ("Each returns ...", "Queue a command: each queues one and returns
    ..."), from "Each" on; None if there is none."""
    text = ' '.join(line.strip() for line in comment)
    for sentence in re.split(r'(?<=\.)\s+', text):
        m = re.search(r'(?:^|: )(each\b[^.]*\breturns\b.*)', sentence, re.I)
        if m:
            return m.group(1)[0].upper() + m.group(1)[1:]
    return None


def split_returns(comment):
    """(description, returns, rest): returns runs from the first sentence
    that starts with "Returns" or "Return" to the end of its paragraph
    (an indented list after it included), for RETURN VALUE ([] if there
    is none); description is what comes before it, rest what follows."""
    for i, line in enumerate(comment):
        m = re.search(r'(^|[.:]\s+)(Returns?\b.*)$', line)
        if not m:
            continue
        j = i + 1
        while j < len(comment) and comment[j].strip():
            j += 1
        head = line[:m.start(2)].rstrip()
        desc = comment[:i] + ([head] if head.strip() else [])
        return desc, [m.group(2)] + comment[i + 1:j], comment[j:]
    return comment, [], []


class Header:
    def __init__(self, path):
        self.preamble, self.blocks = parse(path)
        self.calls = [b for b in self.blocks if b.kind == 'calls']
        self.types = [b for b in self.blocks if b.kind == 'type']
        self.consts = [b for b in self.blocks if b.kind == 'const']
        self.page_of = {n: b.names[0] for b in self.calls for n in b.names}

    def types_for(self, block, text):
        """The types block's prototypes use, and those these use."""
        used, code_ = [], '\n'.join(block.lines)
        for _ in range(len(self.types)):
            more = [t for t in self.types if t not in used and
                    re.search(r'\b' + re.escape(t.names[0].split()[-1])
                              + r'\b', code_)]
            if not more:
                break
            used += more
            code_ += '\n'.join(l for t in more for l in t.lines)
        return sorted(used, key=self.types.index)

    def consts_for(self, block, text):
        used = []
        decl = '\n'.join(block.lines)
        for c in self.consts:
            prefixes = {re.sub(r'_[A-Z0-9]+$', '_', n) for n in c.names}
            named = any(re.search(r'\b' + n + r'\b', text) for n in c.names)
            star = any(p + '*' in text for p in prefixes)
            cites = any(n + '()' in ' '.join(c.comment) or
                        n + ' ' in ' '.join(c.comment) for n in block.names)
            flags = ('NBDAIO_CMD_FLAG_FUA' in c.names and
                     'uint32_t flags' in decl and
                     'flags must be 0' not in text)
            if named or star or cites or flags:
                used.append(c)
        return used

    def page(self, block):
        """The roff of the page of block's calls."""
        text = '\n'.join(block.comment + sum(block.notes, []))
        desc, returns, rest = split_returns(block.comment)
        out = self.head(block)
        out += prose(desc + ([''] if rest else []) + rest) if desc or rest \
            else ['See the section "%s" of' % esc(block.section),
                  '.BR nbdaio (3).']
        out += self.notes(block) + self.types_and_constants(block, text)
        out += self.return_value(block, returns, text)
        out += self.errors(block) + self.see_also(block, text)
        return '\n'.join(out) + '\n'

    def head(self, block):
        return ['.\\" Generated by man/gen-man.py from core/nbdaio.h:'
                ' edit the contract comment there, not this file.',
                '.TH %s 3 "" "nbdaio" "nbdaio manual"'
                % block.names[0].upper(),
                '.SH NAME',
                esc(', '.join(block.names)) + ' \\- ' + esc(summary(block)),
                '.SH SYNOPSIS', '.nf', '.B #include <nbdaio.h>', '.fi',
                '.PP'] + code(block.lines) + [
                '.PP', 'Link with', '.B \\-lnbdaio',
                '(pkg-config: libnbdaio).',
                '.SH DESCRIPTION']

    def notes(self, block):
        if not block.notes:
            return []
        out = ['.SS Common to the section \\(lq%s\\(rq' % esc(block.section),
               'What the header says for its calls in this section'
               ' (the description above comes first):']
        for note in block.notes:
            out += ['.PP'] + prose(note)
        return out

    def types_and_constants(self, block, text):
        types = self.types_for(block, text)
        consts = self.consts_for(block, '\n'.join(
            [text] + [line for t in types for line in t.comment]))
        out = ['.SS Types and constants'] if types or consts else []
        for t in types + consts:
            out += ['.PP'] + code(t.lines, strip_api=False)
            if t.comment:
                out += ['.PP'] + prose(t.comment)
        return out

    def return_value(self, block, returns, text):
        void = re.match(r'\s*(NBDAIO_API )?void ', block.lines[0])
        out = ['.SH RETURN VALUE']
        said = None if returns or void else self.returns_said(block)
        shared = re.match(r'Returns as (nbdaio_\w+)\.$',
                          ' '.join(returns))
        if shared and shared.group(1) in self.page_of:
            out += self.returns_of(shared.group(1))
        elif returns:
            out += prose(returns)
        elif said:
            out += said
        else:
            out.append('None.' if void else 'As DESCRIPTION says.')
        shown = ' '.join(out)
        if not void and self.errors_listed(block) and \
                not re.search(r'-1\b|\bNULL\b', shown):
            pointer = re.search(r'\*\s*nbdaio_\w+\s*\(', block.lines[0])
            out += ['.PP', '%s on failure (see ERRORS).'
                    % ('NULL' if pointer else '\\-1')]
        can_fail = re.search(r'-1\b|\bNULL\b', text) and \
            not NEVER_FAILS.search(text)
        if not void and can_fail:
            out += ['.PP', 'After a failure,', '.BR nbdaio_get_error (3)',
                    'gives the message and', '.BR nbdaio_get_errno (3)',
                    'the errno value of this thread\'s last error.']
        return out

    def returns_said(self, block, seen=()):
        """RETURN VALUE's roff when the comment has no sentence starting
        "Returns": what "nbdaio_x returns" says for each call of a group,
        or what each call of a group returns; "Same returns ...
        as CALL": CALL's; a getter's comment, which opens with what it
        returns ("The size of the export in bytes", "Whether ...: 1 if
        so, 0 if not"): that sentence and those giving other values; a
        call whose first sentence gives its values after a colon
        ("Retire a command: 1 if ..., 0 if ..."): those; a section note
        saying what "each" call of the section returns; a setter: the
        library's convention.  None if there is no such text."""
        text = ' '.join(s.strip() for s in block.comment if s.strip())
        own = [m.group(0) for m in re.finditer(
            r'\b(nbdaio_\w+) returns\b(?:[^.;()]|' + PAREN + r')*', text)
            if m.group(1) in block.names]
        if len(own) == len(block.names):
            return [esc('; '.join(own) + '.')]
        said = each_returns(block.comment)
        if said:
            return [esc(said)]
        m = re.search(r'\bSame returns\b[^.]*? as (nbdaio_\w+)', text)
        if m and m.group(1) in self.page_of and m.group(1) not in seen:
            return self.returns_of(m.group(1), seen)
        sentences = re.split(r'(?<=[.])\s+(?=[A-Z(-])', text)
        first = sentences[0]
        value = re.compile(r'(?:^|[\s(])(?:-1|0|1|NULL)\b')
        if GETTER_RE.match(first):
            keep = [first] + [s for s in sentences[1:] if value.search(s)]
            said = ' '.join(keep)
            return [esc('Returns ' + said[0].lower() + said[1:])]
        setter = block.names == [block.names[0]] and \
            block.names[0].startswith('nbdaio_set_') and \
            block.lines[0].startswith('NBDAIO_API int ')
        head, colon, rest = first.partition(': ')
        if colon and value.search(rest) and not value.search(head) \
                and not setter:
            keep = [rest] + [s for s in sentences[1:] if value.search(s)]
            return [esc('Returns ' + ' '.join(keep))]
        for note in block.notes:
            m = re.search(r'(?:^|\.\s+)Returns? (0, or -1 (?:[^.()]|'
                          + PAREN + r')*\.)',
                          ' '.join(s.strip() for s in note))
            if m and re.match(r'Each\b', note[0]):
                return [esc('Returns ' + m.group(1))]
        if setter:
            return ['0 on success, -1 on error (the library\'s'
                    ' convention: see', '.BR nbdaio (3)).']
        return None

    def returns_of(self, name, seen=()):
        """RETURN VALUE's roff for a call whose comment says it returns as
        the call name does: "As for name(3): ..." and what name returns."""
        other = self.blocks_named(name)
        _, returns, _ = split_returns(other.comment)
        said = prose(returns) if returns else \
            self.returns_said(other, seen + (name,))
        said = said or []
        if said and said[0][:1].isupper():
            said[0] = said[0][0].lower() + said[0][1:]
        return ['As for', '.BR %s (3):' % name] + said

    def errors(self, block):
        """ERRORS: each errno the contract comment, or a note of the
        section in force for the call, explains (see errors()); a note
        of settings ("Settings: ...") holds for the setters only, and not
        for one allowed at any time."""
        if NEVER_FAILS.search(' '.join(block.comment)):
            return ['.SH ERRORS', 'None: the call never fails.']
        if re.match(r'\s*(NBDAIO_API )?void ', block.lines[0]):
            return []
        listed = self.errors_listed(block)
        out = ['.SH ERRORS'] if listed else []
        for errno_name, why in listed.items():
            out += ['.TP', '.B ' + errno_name, esc(why)]
        return out

    def errors_listed(self, block, seen=()):
        """{errno: why} for block's calls: its comment's, those of the
        call whose errors it says it shares ("Same returns, errors ... as
        CALL", "every error of CALL"), then its section notes' (a reason
        the comment gives comes first)."""
        listed = errors(block.comment)
        text = ' '.join(s.strip() for s in block.comment)
        for m in re.finditer(r'\bSame\b[^.]*\berrors\b[^.]*? as '
                             r'(nbdaio_\w+)|\bevery error of (nbdaio_\w+)'
                             r'|\bReturns as (nbdaio_\w+)', text):
            name = m.group(1) or m.group(2) or m.group(3)
            if name in self.page_of and name not in seen:
                other = self.errors_listed(self.blocks_named(name),
                                           seen + (name,))
                for errno_name, why in other.items():
                    listed.setdefault(errno_name, why)
        if re.search(r'\bErrors: ', text):
            return listed             # the comment's list is the whole
        anytime = re.search(r'\bat any time\b', text)
        setter = re.match(r'nbdaio_(set|add)_', block.names[0])
        for note in block.notes:
            settings = note and note[0].startswith('Settings:')
            if settings and (anytime or not setter):
                continue
            scope = re.match(r'Common to the (nbdaio_\w+)\* calls', note[0])
            if scope and not block.names[0].startswith(scope.group(1)):
                continue
            for errno_name, why in errors(note).items():
                if settings:
                    listed.setdefault(errno_name, why)
                else:
                    add_reason(listed, errno_name, why)
        return listed

    def see_also(self, block, text):
        refs = ['nbdaio']
        for n in IDENT_RE.findall(text):
            page = self.page_of.get(n)
            if page and page != block.names[0] and page not in refs:
                refs.append(page)
        out = ['.SH SEE ALSO']
        for i, r in enumerate(refs):
            out.append('.BR %s (3)%s' % (r, ',' if i < len(refs) - 1 else ''))
        return out

    def man3(self):
        """{file name: text} of the calls' pages and links."""
        pages = {}
        for block in self.calls:
            first = block.names[0]
            pages[first + '.3'] = self.page(block)
            for other in block.names[1:]:
                pages[other + '.3'] = '.so man3/%s.3\n' % first
        return pages

    # ---- parts of the hand-written nbdaio(3) -----------------------------

    def part_conventions(self):
        i = next((k for k, l in enumerate(self.preamble)
                  if l.startswith('Conventions')), 0)
        j = next((k for k, l in enumerate(self.preamble)
                  if l.startswith('Copyright')), len(self.preamble))
        return prose(self.preamble[i + 1:j])

    def part_calls(self):
        out, section = [], None
        for b in self.calls:
            if b.section != section:
                section = b.section
                out += ['.SS %s' % esc(section[:1].upper() + section[1:])]
            out += ['.TP', '.BR %s (3)' % b.names[0], esc(summary(b))]
            if len(b.names) > 1:
                out += ['.br', 'Same page: %s.' % ', '.join(b.names[1:])]
        return out

    def part_callbacks(self):
        out = []
        for t in self.types:
            if t.section != 'callbacks':
                continue
            out += ['.PP'] + code(t.lines, strip_api=False)
            if t.comment:
                out += ['.PP'] + prose(t.comment)
        return out

    def part_settings(self):
        block = self.blocks_named('nbdaio_set_option')
        rows = []
        for line in block.comment:
            m = re.match(r'^  ([a-z][a-z0-9-]+) ', line)
            if m:
                rows.append(line[2:])
            elif rows and line.startswith('    '):
                rows.append(line[2:])
            elif rows:
                break
        if len(rows) < 5:
            raise SystemExit('gen-man.py: no table of settings in the comment'
                             ' of nbdaio_set_option: update part_settings')
        return ['.RS 2', '.nf'] + [esc(l) for l in rows] + ['.fi', '.RE']

    def blocks_named(self, name):
        return next(b for b in self.calls if name in b.names)


# ---- the fio engine's options (fio-plugin/options.c) ---------------------

def c_strings(s):
    return ''.join(re.findall(r'"((?:[^"\\]|\\.)*)"', s))


def fio_options(path):
    """(name, default, help) of each entry of options.c's job_options, in
    the table's order: a { .name = ... } entry, or a SETTING_OPTION (a
    library setting by name: default 'setting')."""
    with open(path, encoding='utf-8') as f:
        src = f.read()
    table = src[src.index('job_options[]'):]
    table = table[:table.index('{ .name = NULL }')]
    string = r'"(?:[^"\\]|\\.)*"'
    out = []
    for m in re.finditer(r'\{\s*\.name = "([a-z_]+)"(.*?)\n  \},'
                         r'|SETTING_OPTION \(\w+,\s*"([a-z_]+)",\s*'
                         + string + r',(.*?)\),\n', table, re.S):
        if m.group(1):
            body = m.group(2)
            d = re.search(r'\.def = "([^"]*)"', body)
            h = re.search(r'\.help = ((?:\s*' + string + ')+)', body)
            out.append((m.group(1), d.group(1) if d else None,
                        c_strings(h.group(1))))
        else:
            out.append((m.group(3), 'setting', c_strings(m.group(4))))
    entries = len(re.findall(r'\.name = "|SETTING_OPTION \(', table))
    if entries != len(out):
        raise SystemExit('%s: read %d of the %d options of job_options: '
                         'update fio_options in gen-man.py'
                         % (path, len(out), entries))
    return out


def part_fio_options(path):
    out = []
    for name, default, text in fio_options(path):
        out += ['.TP', '.BI %s= value' % name]
        out.append(esc(text + ('.' if not text.endswith('.') else '')))
        if default == 'setting':
            out += ['The library setting',
                    '.BR %s .' % name.replace('_', '\\-')]
        elif default is not None:
            out.append(esc('Default: %s.' % default))
    return out


def fill(template, header, options):
    parts = {
        'CONVENTIONS': header.part_conventions,
        'CALLS': header.part_calls,
        'CALLBACKS': header.part_callbacks,
        'SETTINGS': header.part_settings,
    }
    if options:
        parts['FIO_OPTIONS'] = lambda: part_fio_options(options)
    out = ['.\\" Generated by man/gen-man.py from %s: edit that file'
           % template.split('/')[-1]]
    with open(template, encoding='utf-8') as f:
        for line in f.read().split('\n')[:-1]:
            m = re.match(r'^@([A-Z_]+)@$', line)
            if m:
                out += parts[m.group(1)]()
            else:
                out.append(line)
    return '\n'.join(out) + '\n'


def write_man3(header_path, template, outdir):
    """Make outdir hold exactly the man3 pages, removing any page of a
    call the header no longer declares; outdir's time stamp is that of
    this run, for the build tool that made outdir its output."""
    header = Header(header_path)
    pages = header.man3()
    pages['nbdaio.3'] = fill(template, header, None)
    os.makedirs(outdir, exist_ok=True)
    for name in os.listdir(outdir):     # pages of calls gone (only pages)
        if name.endswith('.3') and name not in pages:
            os.remove(os.path.join(outdir, name))
    for name, text in pages.items():
        with open(os.path.join(outdir, name), 'w') as f:
            f.write(text)
    os.utime(outdir)


def main(argv):
    if len(argv) == 5 and argv[1] == 'man3':
        write_man3(argv[2], argv[3], argv[4])
    elif len(argv) in (5, 7) and argv[1] == 'page':
        options = argv[6] if len(argv) == 7 and argv[5] == '--options' \
            else None
        text = fill(argv[3], Header(argv[2]), options)
        with open(argv[4], 'w') as f:
            f.write(text)
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
