#include "common/tx_status.h"

#include <stdio.h>
#include <string.h>

const char *tx_status_name(int status)
{
    switch (status) {
    case TX_OK:
        return "OK";
    case TX_EINVAL:
        return "EINVAL";
    case TX_ENOMEM:
        return "ENOMEM";
    case TX_EIO:
        return "EIO";
    case TX_ETIMEDOUT:
        return "ETIMEDOUT";
    case TX_EUNAVAIL:
        return "EUNAVAIL";
    case TX_ENOTFOUND:
        return "ENOTFOUND";
    case TX_EEXIST:
        return "EEXIST";
    case TX_ETOOBIG:
        return "ETOOBIG";
    case TX_ESYNTAX:
        return "ESYNTAX";
    case TX_EREJECT:
        return "EREJECT";
    default:
        return "EUNKNOWN";
    }
}

int tx_err_set(struct tx_err *err, int code, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return code;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return code;
}

void tx_err_clear(struct tx_err *err)
{
    if (err == NULL)
        return;
    memset(err, 0, sizeof(*err));
}
