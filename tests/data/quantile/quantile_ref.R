# Reference numbers for tests/analysis/test_reference_quantile.py (R 4.2.2, survey 4.1-1).
# Run from this folder: Rscript quantile_ref.R   (writes the three CSV files beside it)
# The data are made here (set.seed below): a stratified one-stage cluster sample with fpc,
# unequal weights, tied values, and three domains spread over the PSUs.
suppressMessages(library(survey))
set.seed(20240519)
fmt <- function(x) ifelse(is.na(x), "NA", sprintf("%.17g", x))

strata_psus <- c(4, 5, 6, 7)
strata_N <- c(20, 30, 40, 50)
rows <- list()
for (h in seq_along(strata_psus)) {
  for (p in seq_len(strata_psus[h])) {
    m <- sample(8:14, 1)
    M <- m * sample(2:6, 1)
    rows[[length(rows) + 1]] <- data.frame(
      stratum = paste0("s", h), psu = paste0("s", h, "p", p), N_h = strata_N[h],
      pw = (strata_N[h] / strata_psus[h]) * (M / m),
      y = round(rgamma(m, shape = 2 + h / 2, scale = 10) + rnorm(1, 0, 4), 0),
      g = sample(c("a", "b", "c"), m, replace = TRUE, prob = c(0.45, 0.3, 0.25))
    )
  }
}
dat <- do.call(rbind, rows)
dat$y <- pmax(dat$y, 0)
d <- svydesign(id = ~psu, strata = ~stratum, weights = ~pw, fpc = ~N_h, data = dat)

rj <- as.svrepdesign(d, type = "JKn")
rb <- as.svrepdesign(d, type = "bootstrap", replicates = 40)
jk_w <- weights(rj, "analysis"); colnames(jk_w) <- paste0("jk_", seq_len(ncol(jk_w)))
bs_w <- weights(rb, "analysis"); colnames(bs_w) <- paste0("bs_", seq_len(ncol(bs_w)))
write.csv(cbind(dat, jk_w, bs_w), "quantile_data.csv", row.names = FALSE)
write.csv(data.frame(
  design = c(rep("jkn", ncol(jk_w)), rep("bootstrap", ncol(bs_w))),
  column = c(colnames(jk_w), colnames(bs_w)),
  rscale = c(rj$rscales, rb$rscales),
  scale = c(rep(rj$scale, ncol(jk_w)), rep(rb$scale, ncol(bs_w)))
), "quantile_replicates.csv", row.names = FALSE)

designs <- list(taylor = d, jkn = rj, bootstrap = rb)
out <- list()
run <- function(design_name, qrule, interval, qs) {
  des <- designs[[design_name]]
  for (dom in c("(all)", "a", "b", "c")) {
    sub <- if (dom == "(all)") des else subset(des, g == dom)
    if (inherits(des, "svyrep.design") && interval %in% c("beta", "xlogit", "asin")) {
      # svyquantile.svyrep.design in survey 4.1 does not pass interval.type on to
      # woodruffCI (it always gives the "mean" interval): call woodruffCI as it should
      rule_fn <- get(paste0("qrule_", qrule), asNamespace("survey"))
      x <- sub$variables$y; w <- weights(sub, "sampling")
      r <- t(sapply(qs, function(p) {
        qhat <- rule_fn(x, w, p)
        ci <- survey:::woodruffCI(x, qhat, p, sub, rule_fn, 0.05, degf(sub), method = interval)
        c(qhat, ci, diff(ci) / (2 * qt(0.975, degf(sub))))
      }))
      call <- "woodruffCI"
    } else {
      r <- svyquantile(~y, sub, qs, qrule = qrule, interval.type = interval, ci = TRUE)[[1]]
      call <- "svyquantile"
    }
    for (k in seq_along(qs)) {
      out[[length(out) + 1]] <<- data.frame(
        design = design_name, domain = dom, qrule = qrule, interval = interval, q = qs[k],
        estimate = fmt(r[k, 1]), ci_low = fmt(r[k, 2]), ci_high = fmt(r[k, 3]),
        se = fmt(r[k, 4]), df = degf(sub), call = call)
    }
  }
  if (call == "woodruffCI") return(invisible())
  # svyby gives the same estimates and standard errors as the subsets above
  b <- svyby(~y, ~g, des, svyquantile, quantiles = qs[1], qrule = qrule,
             interval.type = interval, ci = TRUE)
  for (i in 1:3) {
    dom <- c("a", "b", "c")[i]
    sub <- subset(des, g == dom)
    r <- svyquantile(~y, sub, qs[1], qrule = qrule, interval.type = interval, ci = TRUE)[[1]]
    stopifnot(isTRUE(all.equal(unname(coef(b)[i]), unname(r[1, 1]))))
    stopifnot(isTRUE(all.equal(unname(SE(b)[i]), unname(r[1, 4]))))
  }
}
rules <- c("math", "school", paste0("hf", 1:9))
for (rule in rules) run("taylor", rule, "mean", c(0.1, 0.25, 0.5, 0.9))
# an extreme quantile: the Woodruff CDF interval leaves [0, 1] and R gives NaN limits
for (rule in c("hf7", "hf5")) run("taylor", rule, "mean", c(0.02, 0.98))
for (rule in c("math", "school", "hf7")) {
  for (interval in c("beta", "xlogit", "asin", "score")) run("taylor", rule, interval, c(0.25, 0.5))
  for (interval in c("mean", "beta", "xlogit", "asin", "quantile")) run("jkn", rule, interval, c(0.5, 0.9))
}
for (rule in c("math", "hf7")) for (interval in c("mean", "quantile")) run("bootstrap", rule, interval, c(0.5))
res <- do.call(rbind, out)
write.csv(res, "quantile_reference.csv", row.names = FALSE, quote = FALSE)
# every domain of the replicate designs has the whole design's degrees of freedom
stopifnot(all(res$df[res$design == "jkn"] == degf(rj)))
cat(nrow(dat), "rows;", nrow(res), "reference rows\n")
