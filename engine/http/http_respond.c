/*
 * http_respond.c - JSON responses of the HTTP API (see http_int.h): one place
 * sets the content type and the 401's WWW-Authenticate.
 */
#include "http_int.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

enum MHD_Result http_respond(struct MHD_Connection *c, unsigned status, char *json)
{
    if (!json)
        return MHD_NO;
    size_t n = strlen(json);
    struct MHD_Response *r = MHD_create_response_from_buffer(n, json, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(json);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (status == 401)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

enum MHD_Result http_respond_error(struct MHD_Connection *c, unsigned status, const char *field,
                                   long rcpt, const char *why)
{
    json_t *o = json_object();
    if (!o)
        return MHD_NO;
    json_object_set_new(o, "error", json_string(why));
    if (field)
        json_object_set_new(o, "field", json_string(field));
    if (rcpt >= 0)
        json_object_set_new(o, "recipient_index", json_integer(rcpt));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return http_respond(c, status, s);
}
