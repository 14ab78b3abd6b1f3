// http_bench.cc - the HTTP API's hot paths without the network: parsing an
// InjectV1 request (jansson + validation + template parsing) of 1 and of
// 1,000 recipients, rendering a ~5 KB personalised template (raw and HTML
// escaped), building the MIME message, and normalising it (msg.h): what a
// worker spends per recipient before the queue write.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <string>

#ifndef _Static_assert
#define _Static_assert static_assert
#endif
extern "C" {
#include "http_mime.h"
#include "http_req.h"
#include "http_tmpl.h"
#include "msg.h"
}

namespace {

const std::string kPara = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do "
                          "eiusmod tempor incididunt ut labore et dolore magna aliqua.\\n";

std::string text_body()
{
    std::string t = "Hello {{ first | default: \\\"friend\\\" }},\\n";
    for (int i = 0; i < 14; i++)
        t += kPara;
    return t + "Your code is {{ code }}.\\n";
}

std::string request(int rcpts)
{
    std::string r = "{\"envelope_sender\":\"bench@src.test\",\"content\":{\"subject\":"
                    "\"Hi {{ first }}\",\"from\":{\"email\":\"bench@src.test\",\"name\":\"B\"},"
                    "\"text_body\":\"" + text_body() + "\",\"html_body\":\"<p>" + text_body() +
                    "</p>\"},\"recipients\":[";
    for (int i = 0; i < rcpts; i++) {
        char one[200];
        snprintf(one, sizeof one, "%s{\"email\":\"u%d@d%d.test\",\"substitutions\":"
                 "{\"first\":\"User %d\",\"code\":\"C%06d\"}}", i ? "," : "", i, i % 50, i, i);
        r += one;
    }
    return r + "]}";
}

void BM_ParseRequest(benchmark::State &st)
{
    std::string body = request(int(st.range(0)));
    hreq *r = new hreq;
    for (auto _ : st) {
        hreq_err e;
        if (hreq_parse(body.data(), body.size(), r, &e) != 0) {
            st.SkipWithError(e.why);
            break;
        }
        hreq_fini(r);
    }
    delete r;
    st.SetItemsProcessed(int64_t(st.iterations()) * st.range(0));
    st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(body.size()));
}
BENCHMARK(BM_ParseRequest)->Arg(1)->Arg(1000);

// One recipient's message: render subject/text/html, build MIME, normalise.
void BM_RenderBuildNormalise(benchmark::State &st)
{
    std::string body = request(1);
    hreq *r = new hreq;
    hreq_err e;
    if (hreq_parse(body.data(), body.size(), r, &e) != 0) {
        st.SkipWithError(e.why);
        delete r;
        return;
    }
    tmpl_val vals[TMPL_NAMES_MAX];
    for (size_t k = 0; k < r->names.n; k++)
        vals[k] = tmpl_val{"User <7> & co", 13, true};
    hbuf subj{}, text{}, html{}, msg{};
    size_t bytes = 0;
    for (auto _ : st) {
        int miss = -1;
        subj.len = text.len = html.len = msg.len = 0;
        tmpl_render(&r->subject, vals, TMPL_RAW, &subj, &miss);
        tmpl_render(&r->text, vals, TMPL_RAW, &text, &miss);
        tmpl_render(&r->html, vals, TMPL_HTML, &html, &miss);
        mime_msg m{};
        m.from_email = r->from_email;
        m.from_name = r->from_name;
        m.to_email = {r->rcpt[0].email, r->rcpt[0].email_len};
        m.subject = {subj.p, subj.len};
        m.text = {text.p, text.len};
        m.html = {html.p, html.len};
        m.now_ms = 1700000000000ull;
        m.hostname = "bench.test";
        m.unique = 7;
        if (mime_build(&m, &msg) != 0) {
            st.SkipWithError("mime_build failed");
            break;
        }
        msg_opts mo{1700000000000ull, "bench.test", 7, "bench@src.test", false};
        msg_result res{};
        msg_problem prob[1];
        if (msg_normalise(msg.p, msg.len, &mo, &res, prob, 1) != 0) {
            st.SkipWithError("msg_normalise failed");
            break;
        }
        bytes = res.len;
        msg_result_fini(&res);
    }
    st.counters["message_bytes"] = double(bytes);
    st.SetItemsProcessed(int64_t(st.iterations()));
    hbuf_fini(&subj);
    hbuf_fini(&text);
    hbuf_fini(&html);
    hbuf_fini(&msg);
    hreq_fini(r);
    delete r;
}
BENCHMARK(BM_RenderBuildNormalise);

}  // namespace
