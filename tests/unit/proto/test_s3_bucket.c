/* proto/s3_bucket: the bucket configuration documents `reeld buckets init` writes, and the
 * canonical form that tells whether a bucket already has them. */
#include <errno.h>

#include "proto/s3_bucket.h"
#include "tests/unit/test.h"

#define NS "<CORSConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"

TEST(cors_document)
{
    char x[2048];
    int n = s3bucket_cors_xml(x, sizeof(x), " https://app.example , http://a&b.test,,*", 600);
    CHECK(n > 0 && (size_t)n == strlen(x));
    CHECK_EQ_STR(x, NS "<CORSRule><AllowedOrigin>https://app.example</AllowedOrigin>"
                       "<AllowedOrigin>http://a&amp;b.test</AllowedOrigin>"
                       "<AllowedOrigin>*</AllowedOrigin><AllowedMethod>PUT</AllowedMethod>"
                       "<AllowedMethod>GET</AllowedMethod><AllowedMethod>HEAD</AllowedMethod>"
                       "<AllowedHeader>content-type</AllowedHeader><ExposeHeader>ETag"
                       "</ExposeHeader><MaxAgeSeconds>600</MaxAgeSeconds></CORSRule>"
                       "</CORSConfiguration>");
    CHECK_EQ_INT(s3bucket_cors_xml(x, sizeof(x), "", 600), -EINVAL);
    CHECK_EQ_INT(s3bucket_cors_xml(x, sizeof(x), " , ", 600), -EINVAL);
    CHECK_EQ_INT(s3bucket_cors_xml(x, sizeof(x), NULL, 600), -EINVAL);
    CHECK_EQ_INT(s3bucket_cors_xml(x, sizeof(x), "http://a\r\nX: y", 600), -EINVAL);
    CHECK_EQ_INT(s3bucket_cors_xml(x, 64, "http://a", 600), -ENOSPC);
    CHECK_EQ_STR(x, "");
}

TEST(lifecycle_document)
{
    char x[2048];
    int n = s3bucket_lifecycle_xml(x, sizeof(x), "reeld-staging", 1, 7);
    CHECK(n > 0);
    CHECK_EQ_STR(x, "<LifecycleConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                    "<Rule><ID>reeld-staging</ID><Filter><Prefix></Prefix></Filter>"
                    "<Status>Enabled</Status><Expiration><Days>7</Days></Expiration>"
                    "<AbortIncompleteMultipartUpload><DaysAfterInitiation>1"
                    "</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>"
                    "</LifecycleConfiguration>");
    CHECK(s3bucket_lifecycle_xml(x, sizeof(x), "r", 1, 0) > 0);
    CHECK(strstr(x, "Expiration") == NULL && strstr(x, "<DaysAfterInitiation>1<") != NULL);
    CHECK_EQ_INT(s3bucket_lifecycle_xml(x, sizeof(x), "r", 0, 0), -EINVAL);
    CHECK_EQ_INT(s3bucket_lifecycle_xml(x, sizeof(x), "r<", 1, 0), -EINVAL);
    CHECK_EQ_INT(s3bucket_lifecycle_xml(x, sizeof(x), "r", 1, -1), -EINVAL);
}

TEST(object_lock_and_create_documents)
{
    char x[1024];
    CHECK(s3bucket_object_lock_xml(x, sizeof(x), "governance", 30) > 0);
    CHECK(strstr(x, "<ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention>"
                    "<Mode>GOVERNANCE</Mode><Days>30</Days></DefaultRetention></Rule>") != NULL);
    CHECK_EQ_INT(s3bucket_object_lock_xml(x, sizeof(x), "legal", 30), -EINVAL);
    CHECK_EQ_INT(s3bucket_object_lock_xml(x, sizeof(x), "COMPLIANCE", 0), -EINVAL);

    CHECK_EQ_INT(s3bucket_create_xml(x, sizeof(x), "us-east-1"), 0);
    CHECK_EQ_STR(x, "");
    CHECK(s3bucket_create_xml(x, sizeof(x), "eu-west-3") > 0);
    CHECK_EQ_STR(x, "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                    "<LocationConstraint>eu-west-3</LocationConstraint>"
                    "</CreateBucketConfiguration>");
    CHECK_EQ_INT(s3bucket_create_xml(x, sizeof(x), "eu west"), -EINVAL);
    CHECK_EQ_INT(s3bucket_create_xml(x, sizeof(x), ""), -EINVAL);
}

static int canon_str(const char *xml, char *out, size_t cap)
{
    return s3bucket_canon(xml, strlen(xml), out, cap);
}

TEST(canon_of_own_document)
{
    char x[2048], c[4096];
    s3bucket_cors_xml(x, sizeof(x), "https://a.test,*", 600);
    int n = canon_str(x, c, sizeof(c));
    CHECK(n > 0 && (size_t)n == strlen(c));
    CHECK_EQ_STR(c, "CORSConfiguration/CORSRule[1]/AllowedHeader=content-type\n"
                    "CORSConfiguration/CORSRule[1]/AllowedMethod=GET\n"
                    "CORSConfiguration/CORSRule[1]/AllowedMethod=HEAD\n"
                    "CORSConfiguration/CORSRule[1]/AllowedMethod=PUT\n"
                    "CORSConfiguration/CORSRule[1]/AllowedOrigin=*\n"
                    "CORSConfiguration/CORSRule[1]/AllowedOrigin=https://a.test\n"
                    "CORSConfiguration/CORSRule[1]/ExposeHeader=ETag\n"
                    "CORSConfiguration/CORSRule[1]/MaxAgeSeconds=600\n");
}

/* What a server sends back: a prolog, other white space, the order of leaves changed, empty
 * elements added or dropped, a namespace prefix, entities: the same configuration. */
TEST(canon_equal_when_the_same)
{
    char a[4096], b[4096], mine[2048];
    s3bucket_lifecycle_xml(mine, sizeof(mine), "reeld-staging", 1, 7);
    CHECK(canon_str(mine, a, sizeof(a)) > 0);
    const char *server =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LifecycleConfiguration "
        "xmlns='http://s3.amazonaws.com/doc/2006-03-01/'>\n  <Rule>\n    <ID>reeld&#45;staging</ID>"
        "\n    <Status>Enabled</Status>\n    <Filter/>\n    <AbortIncompleteMultipartUpload>"
        "<DaysAfterInitiation> 1 </DaysAfterInitiation></AbortIncompleteMultipartUpload>\n"
        "    <!-- a comment --><Expiration><Days><![CDATA[7]]></Days><Date></Date></Expiration>\n"
        "  </Rule>\n</LifecycleConfiguration>\n";
    CHECK(canon_str(server, b, sizeof(b)) > 0);
    CHECK_EQ_STR(a, b);
    const char *prefixed = "<s3:LifecycleConfiguration xmlns:s3=\"x\"><s3:Rule><s3:ID>reeld-staging"
                           "</s3:ID><s3:Filter><s3:Prefix/></s3:Filter><s3:Status>Enabled"
                           "</s3:Status><s3:Expiration><s3:Days>7</s3:Days></s3:Expiration>"
                           "<s3:AbortIncompleteMultipartUpload><s3:DaysAfterInitiation>1"
                           "</s3:DaysAfterInitiation></s3:AbortIncompleteMultipartUpload>"
                           "</s3:Rule></s3:LifecycleConfiguration>";
    CHECK(canon_str(prefixed, b, sizeof(b)) > 0);
    CHECK_EQ_STR(a, b);
}

TEST(canon_differs_when_not_the_same)
{
    char a[4096], b[4096], x[2048];
    s3bucket_cors_xml(x, sizeof(x), "https://a.test", 600);
    canon_str(x, a, sizeof(a));
    s3bucket_cors_xml(x, sizeof(x), "https://b.test", 600);
    canon_str(x, b, sizeof(b));
    CHECK(strcmp(a, b) != 0);
    s3bucket_cors_xml(x, sizeof(x), "https://a.test,https://b.test", 600);
    canon_str(x, b, sizeof(b));
    CHECK(strcmp(a, b) != 0);
    /* Two rules are not one rule with the leaves of both. */
    const char *one = "<C><R><O>a</O><M>PUT</M><O>b</O><M>GET</M></R></C>";
    const char *two = "<C><R><O>a</O><M>PUT</M></R><R><O>b</O><M>GET</M></R></C>";
    canon_str(one, a, sizeof(a));
    canon_str(two, b, sizeof(b));
    CHECK(strcmp(a, b) != 0);
    CHECK_EQ_STR(b, "C/R[1]/M=PUT\nC/R[1]/O=a\nC/R[2]/M=GET\nC/R[2]/O=b\n");
    /* Object Lock: a mode or a number of days changed. */
    s3bucket_object_lock_xml(x, sizeof(x), "COMPLIANCE", 30);
    canon_str(x, a, sizeof(a));
    s3bucket_object_lock_xml(x, sizeof(x), "COMPLIANCE", 31);
    canon_str(x, b, sizeof(b));
    CHECK(strcmp(a, b) != 0);
}

TEST(canon_rejects_what_is_not_xml)
{
    char c[256];
    CHECK_EQ_INT(canon_str("", c, sizeof(c)), -EINVAL);
    CHECK_EQ_INT(canon_str("<?xml version=\"1.0\"?>", c, sizeof(c)), -EINVAL);
    CHECK_EQ_INT(canon_str("<a><b></a></b>", c, sizeof(c)), -EINVAL);
    CHECK_EQ_INT(canon_str("<a><b>", c, sizeof(c)), -EINVAL);
    CHECK_EQ_INT(canon_str("<a/><b/>", c, sizeof(c)), -EINVAL);
    CHECK_EQ_INT(canon_str("text<a/>", c, sizeof(c)), -EINVAL);
    CHECK_EQ_INT(canon_str("<a x=\"1>", c, sizeof(c)), -EINVAL);
    CHECK_EQ_INT(canon_str("</a>", c, sizeof(c)), -EINVAL);
    CHECK_EQ_INT(canon_str("<a><!-- open</a>", c, sizeof(c)), -EINVAL);
    CHECK_EQ_INT(canon_str("<a>x</a>", c, sizeof(c)), 4);
    CHECK_EQ_STR(c, "a=x\n");
    CHECK_EQ_INT(canon_str("<a>x</a>", c, 4), -E2BIG);
    CHECK_EQ_INT(canon_str("<a x=\"/>\">y</a >", c, sizeof(c)), 4);
    CHECK_EQ_STR(c, "a=y\n");
    /* A character reference to a control character is a space, as a raw one is: a newline
     * in a value would make two lines of one (the fuzzer found "&#10;"). */
    CHECK_EQ_INT(canon_str("<a><b>x&#10;y&#x9;z</b></a>", c, sizeof(c)), 13);
    CHECK_EQ_STR(c, "a/b[1]=x y z\n");
}

TEST(canon_limits)
{
    /* Deeper than S3BUCKET_MAX_DEPTH. */
    char deep[1024] = "", c[256];
    for (int i = 0; i <= S3BUCKET_MAX_DEPTH; i++)
        strcat(deep, "<a>");
    CHECK_EQ_INT(canon_str(deep, c, sizeof(c)), -E2BIG);
    /* More leaves than S3BUCKET_MAX_LEAVES. */
    static char many[16 * (S3BUCKET_MAX_LEAVES + 2)];
    size_t n = (size_t)sprintf(many, "<r>");
    for (int i = 0; i <= S3BUCKET_MAX_LEAVES; i++)
        n += (size_t)sprintf(many + n, "<l>%d</l>", i);
    sprintf(many + n, "</r>");
    static char out[S3BUCKET_MAX_DOC * 2];
    CHECK_EQ_INT(s3bucket_canon(many, strlen(many), out, sizeof(out)), -E2BIG);
}

int main(void)
{
    RUN(cors_document);
    RUN(lifecycle_document);
    RUN(object_lock_and_create_documents);
    RUN(canon_of_own_document);
    RUN(canon_equal_when_the_same);
    RUN(canon_differs_when_not_the_same);
    RUN(canon_rejects_what_is_not_xml);
    RUN(canon_limits);
    return test_summary();
}
