/*
 * yaml_doc.c - where a YAML document's nodes are, in bytes, for yaml.edit.
 *
 * lua/yaml_edit.lua splices the text; it needs to know where each node
 * along an edit's path starts and ends, how it is written (block or flow,
 * plain or quoted), and whether it carries an anchor, a tag or is an alias.
 * libyaml's event parser knows all of that, but its marks count characters
 * (a UTF-8 sequence is one, a byte order mark none, CR LF two): a splicer
 * that used them as byte offsets would cut characters in half. A cursor
 * walks the text alongside the marks and turns each into a byte offset.
 *
 * Only the path's containers report their children: an edit touches one
 * branch, and building a table per node of a 1 MB file would cost more
 * than the edit itself (the bench's target is about one re-parse).
 */
#include "internal.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* Character index -> byte offset, moving from the previous answer: marks
 * arrive almost in document order, so each conversion is short. */
typedef struct cursor {
    const unsigned char *text;
    size_t len, chars, bytes;
} cursor;

static size_t byte_at(cursor *c, size_t index)
{
    while (c->chars < index && c->bytes < c->len) {
        c->bytes++;
        while (c->bytes < c->len && (c->text[c->bytes] & 0xC0) == 0x80)
            c->bytes++;
        c->chars++;
    }
    while (c->chars > index && c->bytes > 0) {
        c->bytes--;
        while (c->bytes > 0 && (c->text[c->bytes] & 0xC0) == 0x80)
            c->bytes--;
        c->chars--;
    }
    return c->bytes;
}

typedef struct frame {
    bool mapping;
    bool on_path;    /* the node at path depth `depth` */
    bool flow;
    bool want_value; /* on a path mapping: the key just read is the path's next key */
    bool found;      /* on a path mapping: that key was seen already */
    int table;       /* stack index of the node's info table, 0 if not reported */
    int depth;
    lua_Integer count; /* children (a mapping's keys and values both count) */
    size_t last;       /* end of the last content byte in the subtree */
} frame;

/* Owned by a userdata so that an error raised mid-parse frees it all. */
typedef struct scan_state {
    yaml_parser_t parser;
    yaml_event_t event;
    bool parser_ready, event_ready;
    frame *frames;
    size_t nframes, cap;
} scan_state;

static int scan_state_gc(lua_State *L)
{
    scan_state *st = lua_touserdata(L, 1);
    if (st->event_ready)
        yaml_event_delete(&st->event);
    if (st->parser_ready)
        yaml_parser_delete(&st->parser);
    free(st->frames);
    st->event_ready = st->parser_ready = false;
    st->frames = NULL;
    return 0;
}

static const char *scalar_style(yaml_scalar_style_t style)
{
    switch (style) {
    case YAML_SINGLE_QUOTED_SCALAR_STYLE: return "single";
    case YAML_DOUBLE_QUOTED_SCALAR_STYLE: return "double";
    case YAML_LITERAL_SCALAR_STYLE: return "literal";
    case YAML_FOLDED_SCALAR_STYLE: return "folded";
    default: return "plain";
    }
}

/* Sets t.<name> (t at the top of the stack) to the 1-based byte position. */
static void set_pos(lua_State *L, const char *name, size_t offset)
{
    lua_pushinteger(L, (lua_Integer)offset);
    lua_setfield(L, -2, name);
}

static void set_str(lua_State *L, const char *name, const yaml_char_t *s)
{
    if (s == NULL)
        return;
    lua_pushstring(L, (const char *)s);
    lua_setfield(L, -2, name);
}

/* Is the node starting now the path's next node under `parent`? */
static bool continues_path(lua_State *L, const frame *parent)
{
    if (parent->mapping)
        return parent->want_value && parent->count % 2 == 1;
    bool match = lua_rawgeti(L, 2, parent->depth + 1) == LUA_TNUMBER &&
                 lua_tointeger(L, -1) == parent->count + 1;
    lua_pop(L, 1);
    return match;
}

/* A path mapping's key just ended: is it the path's next key? Only the
 * first occurrence counts; lua/yaml_edit.lua refuses duplicates. */
static void match_key(lua_State *L, frame *parent, const yaml_event_t *ev)
{
    parent->want_value = false;
    if (parent->found || ev->type != YAML_SCALAR_EVENT)
        return;
    if (lua_rawgeti(L, 2, parent->depth + 1) == LUA_TSTRING) {
        size_t n;
        const char *want = lua_tolstring(L, -1, &n);
        if (n == ev->data.scalar.length && memcmp(want, ev->data.scalar.value, n) == 0)
            parent->want_value = parent->found = true;
    }
    lua_pop(L, 1);
}

/* The info table just built (top of stack) becomes a child of `parent`:
 * a mapping's entries are {key = t, value = t}, a sequence's items t. */
static void attach(lua_State *L, const frame *parent)
{
    lua_getfield(L, parent->table, parent->mapping ? "entries" : "items");
    if (!parent->mapping) {
        lua_pushvalue(L, -2);
        lua_rawseti(L, -2, parent->count + 1);
    } else if (parent->count % 2 == 0) {
        lua_createtable(L, 0, 2);
        lua_pushvalue(L, -3);
        lua_setfield(L, -2, "key");
        lua_rawseti(L, -2, parent->count / 2 + 1);
    } else {
        lua_rawgeti(L, -1, parent->count / 2 + 1);
        lua_pushvalue(L, -3);
        lua_setfield(L, -2, "value");
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* Builds the info table of the node whose event is `ev` when its parent
 * reports children (or it is the root); leaves it on the stack and returns
 * its index, or returns 0. Stack slot 3 is the result table. */
static int node_start(lua_State *L, scan_state *st, cursor *cur, const yaml_event_t *ev,
                      bool *on_path, int *depth)
{
    frame *parent = st->nframes > 0 ? &st->frames[st->nframes - 1] : NULL;
    *on_path = parent == NULL || (parent->on_path && continues_path(L, parent));
    *depth = parent == NULL ? 0 : parent->depth + 1;
    if (parent != NULL && !parent->on_path)
        return 0;
    luaL_checkstack(L, 8, "yaml.edit: document nested too deeply");
    lua_createtable(L, 0, 10);
    const yaml_char_t *anchor = NULL, *tag = NULL;
    const char *kind = "scalar";
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        anchor = ev->data.scalar.anchor;
        tag = ev->data.scalar.tag;
        lua_pushlstring(L, (const char *)ev->data.scalar.value, ev->data.scalar.length);
        lua_setfield(L, -2, "value");
        lua_pushstring(L, scalar_style(ev->data.scalar.style));
        lua_setfield(L, -2, "style");
        break;
    case YAML_ALIAS_EVENT:
        kind = "alias";
        break;
    case YAML_SEQUENCE_START_EVENT:
        kind = "seq";
        anchor = ev->data.sequence_start.anchor;
        tag = ev->data.sequence_start.tag;
        lua_pushboolean(L, ev->data.sequence_start.style == YAML_FLOW_SEQUENCE_STYLE);
        lua_setfield(L, -2, "flow");
        break;
    default:
        kind = "map";
        anchor = ev->data.mapping_start.anchor;
        tag = ev->data.mapping_start.tag;
        lua_pushboolean(L, ev->data.mapping_start.style == YAML_FLOW_MAPPING_STYLE);
        lua_setfield(L, -2, "flow");
        break;
    }
    lua_pushstring(L, kind);
    lua_setfield(L, -2, "kind");
    set_str(L, "anchor", anchor);
    set_str(L, "tag", tag);
    if (ev->type == YAML_ALIAS_EVENT)
        set_str(L, "anchor", ev->data.alias.anchor);
    set_pos(L, "s", byte_at(cur, ev->start_mark.index) + 1);
    if (*on_path) {
        lua_getfield(L, 3, "nodes");
        lua_pushvalue(L, -2);
        lua_rawseti(L, -2, *depth);
        lua_pop(L, 1);
    }
    if (parent != NULL)
        attach(L, parent);
    return lua_gettop(L);
}

static void push_frame(lua_State *L, scan_state *st, bool mapping, bool flow, int table,
                       bool on_path, int depth)
{
    if (st->nframes == st->cap) {
        frame *grown = mig_grow(st->frames, &st->cap, sizeof *grown, 16);
        if (grown == NULL)
            luaL_error(L, "yaml.edit: out of memory");
        st->frames = grown;
    }
    if (on_path && table != 0) {
        lua_newtable(L);
        lua_setfield(L, table, mapping ? "entries" : "items");
    }
    st->frames[st->nframes++] = (frame){.mapping = mapping, .flow = flow, .on_path = on_path,
                                        .table = table, .depth = depth};
}

/* A node ended at byte `last` (exclusive): its table (if any) gets e and
 * last (inclusive), its parent counts it and extends its own last. */
static void node_end(lua_State *L, scan_state *st, int table, size_t last, const yaml_event_t *ev)
{
    if (table != 0) {
        lua_pushinteger(L, (lua_Integer)last);
        lua_setfield(L, table, "e");
        lua_pushinteger(L, (lua_Integer)last);
        lua_setfield(L, table, "last");
        lua_settop(L, table - 1);
    }
    if (st->nframes == 0)
        return;
    frame *parent = &st->frames[st->nframes - 1];
    if (parent->on_path && parent->mapping && parent->count % 2 == 0)
        match_key(L, parent, ev);
    else if (parent->mapping)
        parent->want_value = false;
    parent->count++;
    if (last > parent->last)
        parent->last = last;
}

/* Whether a line's indentation holds a tab (in Lua, this search cost a
 * seventh of a decode on a large file). */
static bool tab_indented(const char *text, size_t len)
{
    bool at_indent = true;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == '\n')
            at_indent = true;
        else if (at_indent && c == '\t')
            return true;
        else if (c != ' ')
            at_indent = false;
    }
    return false;
}

static void parse_error(lua_State *L, const yaml_parser_t *p)
{
    luaL_error(L, "yaml.edit: line %d column %d: %s", (int)p->problem_mark.line + 1,
               (int)p->problem_mark.column + 1, p->problem ? p->problem : "invalid YAML");
}

/* scan(text, path) -> { nodes = {[0] = root, [1] = ..., ...}, documents = n }
 * Each node: kind ("map", "seq", "scalar", "alias"), s and e (1-based,
 * inclusive byte range: for a block collection, of its content from its
 * properties to its last content byte), flow, style, value (scalars),
 * anchor, tag; the path's containers also list entries ({key, value}) or
 * items. A text with a tab in some line's indentation is not parsed: the
 * result is { tabs = true, nodes = {} }. */
static int yaml_doc_scan(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    lua_createtable(L, 0, 3); /* 3: the result */
    lua_newtable(L);
    lua_setfield(L, 3, "nodes");
    /* refused before parsing: libyaml's error would not say why */
    if (tab_indented(text, len)) {
        lua_pushboolean(L, 1);
        lua_setfield(L, 3, "tabs");
        return 1;
    }
    scan_state *st = lua_newuserdatauv(L, sizeof *st, 0); /* 4 */
    memset(st, 0, sizeof *st);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, scan_state_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    if (!yaml_parser_initialize(&st->parser))
        return luaL_error(L, "yaml.edit: out of memory");
    st->parser_ready = true;
    yaml_parser_set_input_string(&st->parser, (const unsigned char *)text, len);
    cursor cur = {(const unsigned char *)text, len, 0, 0};
    /* libyaml drops a UTF-8 byte order mark before it counts characters. */
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        cur.bytes = 3;
    lua_Integer documents = 0;
    for (bool done = false; !done;) {
        if (!yaml_parser_parse(&st->parser, &st->event))
            parse_error(L, &st->parser);
        st->event_ready = true;
        yaml_event_t *ev = &st->event;
        bool on_path;
        int depth, table;
        switch (ev->type) {
        case YAML_STREAM_END_EVENT: done = true; break;
        case YAML_DOCUMENT_START_EVENT: documents++; break;
        case YAML_SCALAR_EVENT:
        case YAML_ALIAS_EVENT:
            table = node_start(L, st, &cur, ev, &on_path, &depth);
            node_end(L, st, table, byte_at(&cur, ev->end_mark.index), ev);
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: {
            bool mapping = ev->type == YAML_MAPPING_START_EVENT;
            bool flow = mapping ? ev->data.mapping_start.style == YAML_FLOW_MAPPING_STYLE
                                : ev->data.sequence_start.style == YAML_FLOW_SEQUENCE_STYLE;
            table = node_start(L, st, &cur, ev, &on_path, &depth);
            push_frame(L, st, mapping, flow, table, on_path, depth);
            break;
        }
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: {
            frame f = st->frames[--st->nframes];
            /* A block collection ends where the next token begins, past
             * comments and blank lines; its content ends with its last
             * child. A flow one ends at its bracket. */
            size_t last = f.flow ? byte_at(&cur, ev->end_mark.index) : f.last;
            node_end(L, st, f.table, last, ev);
            break;
        }
        default: break;
        }
        yaml_event_delete(&st->event);
        st->event_ready = false;
    }
    lua_pushinteger(L, documents);
    lua_setfield(L, 3, "documents");
    lua_pushboolean(L, cur.len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0);
    lua_setfield(L, 3, "bom");

    lua_settop(L, 3);
    return 1;
}

void mig_push_yaml_scan(lua_State *L)
{
    lua_pushcfunction(L, yaml_doc_scan);
}

/* ---- yaml.edit ------------------------------------------------------------------
 * Upvalues: yaml.encode as the module was opened (a script replacing it
 * later cannot change what the editor writes), yaml.decode likewise, then
 * the backend, built on the first call so that opening yaml costs nothing
 * more. The document layer is lua/doc.lua, loaded by doc.c. */

static void push_backend(lua_State *L)
{
    const char *name = "lua/yaml_edit.lua";
    const mig_embedded *src = mig_embedded_find(name);
    if (src == NULL)
        luaL_error(L, "%s is not embedded in this build", name);
    if (luaL_loadbufferx(L, src->data, src->len, "@lua/yaml_edit.lua", "t") != LUA_OK)
        lua_error(L);
    mig_push_yaml_scan(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_call(L, 2, 1);
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_setfield(L, -2, "decode");
}

static int yaml_edit(lua_State *L)
{
    luaL_checkstring(L, 1);
    lua_settop(L, 1);
    if (lua_type(L, lua_upvalueindex(3)) == LUA_TNIL) {
        push_backend(L);
        lua_replace(L, lua_upvalueindex(3));
    }
    mig_push_doc(L);
    lua_getfield(L, -1, "new");
    lua_pushvalue(L, lua_upvalueindex(3));
    lua_pushvalue(L, 1);
    lua_call(L, 2, 1);
    return 1;
}

void mig_yaml_add_edit(lua_State *L)
{
    lua_getfield(L, -1, "encode");
    lua_getfield(L, -2, "decode");
    lua_pushnil(L);
    lua_pushcclosure(L, yaml_edit, 3);
    lua_setfield(L, -2, "edit");
}
