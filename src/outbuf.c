/*
 * outbuf.c - the output buffer json.encode and yaml.encode write into.
 *
 * A plain userdata at a fixed stack slot rather than a luaL_Buffer: a
 * luaL_Buffer needs the stack balanced between its calls, and the encoders
 * keep tables and keys on the stack as they descend. Growing replaces the
 * userdata in its slot, so an error anywhere (luaL_error, out of memory)
 * leaves nothing to free.
 */
#include "internal.h"

#include <lauxlib.h>

#include <stdint.h>
#include <string.h>

void mig_outbuf_init(mig_outbuf *b, lua_State *L, const char *what)
{
    b->L = L;
    b->what = what;
    b->len = 0;
    b->cap = 256;
    b->data = lua_newuserdatauv(L, b->cap, 0);
    b->slot = lua_gettop(L);
}

void mig_outbuf_grow(mig_outbuf *b, size_t n)
{
    size_t cap = b->cap;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2)
            luaL_error(b->L, "%s: output too large", b->what);
        cap *= 2;
    }
    char *bigger = lua_newuserdatauv(b->L, cap, 0);
    memcpy(bigger, b->data, b->len);
    lua_replace(b->L, b->slot);
    b->data = bigger;
    b->cap = cap;
}

void mig_outbuf_fill(mig_outbuf *b, char c, size_t n)
{
    mig_outbuf_reserve(b, n);
    memset(b->data + b->len, c, n);
    b->len += n;
}

void mig_outbuf_push(mig_outbuf *b)
{
    lua_pushlstring(b->L, b->data, b->len);
}
