# Reference numbers for tests/analysis/test_reference_contrasts.py (R 4.2.2, survey 4.1-1).
# Run from this folder: Rscript contrasts_ref.R   (writes the CSV files beside it)
# The data are made here: a stratified one-stage cluster sample with fpc in which every PSU
# was observed in two periods (a panel of clusters, so the periods share PSUs), a persistent
# PSU effect, three domains g crossing the PSUs, two regions (PSUs nested in them).
suppressMessages(library(survey))
set.seed(7)
fmt <- function(x) sprintf("%.17g", x)
rows <- list()
for (h in 1:4) {
  n_h <- 4 + h
  for (p in seq_len(n_h)) {
    u <- rnorm(1, 0, 6)
    region <- sample(c("north", "south"), 1)
    for (period in c("1404-12", "1405-01")) {
      m <- sample(5:9, 1)
      g <- sample(c("a", "b", "c"), m, replace = TRUE, prob = c(0.5, 0.3, 0.2))
      y <- 50 + u + (period == "1405-01") * 2 + c(a = 0, b = 4, c = -3)[g] + rnorm(m, 0, 8)
      rows[[length(rows) + 1]] <- data.frame(
        stratum = paste0("h", h), psu = paste0("h", h, "p", p), N_h = 3 * n_h,
        pw = 3 * runif(m, 4, 9), period = period, region = region, g = g,
        y = round(y, 2), y01 = as.numeric(y > 55))
    }
  }
}
dat <- do.call(rbind, rows)
dat$one <- 1
for (lev in c("a", "b", "c")) {
  dat[[paste0("n_", lev)]] <- as.numeric(dat$g == lev)
  dat[[paste0("y_", lev)]] <- dat$y * (dat$g == lev)
  dat[[paste0("s_", lev)]] <- dat$y01 * (dat$g == lev)
}
d <- svydesign(id = ~psu, strata = ~stratum, weights = ~pw, fpc = ~N_h, data = dat)
pop_g <- data.frame(g = c("a", "b", "c"), Freq = c(2600, 1500, 1100))
pop_region <- data.frame(region = c("north", "south"), Freq = c(2900, 2300))
dr <- rake(d, list(~g, ~region), list(pop_g, pop_region), control = list(maxit = 100, epsilon = 1e-12))
rj <- as.svrepdesign(d, type = "JKn")
jk <- weights(rj, "analysis"); colnames(jk) <- paste0("jk_", seq_len(ncol(jk)))
keep <- c("stratum", "psu", "N_h", "pw", "period", "region", "g", "y", "y01")
write.csv(cbind(dat[keep], jk), "contrasts_data.csv", row.names = FALSE)
write.csv(data.frame(column = colnames(jk), rscale = rj$rscales, scale = rj$scale),
          "contrasts_replicates.csv", row.names = FALSE)

out <- list(); cov_out <- list()
add <- function(case, stat) {
  out[[length(out) + 1]] <<- data.frame(case = case, label = names(coef(stat)),
    estimate = fmt(coef(stat)), se = fmt(SE(stat)))
}
add_cov <- function(case, b) {
  v <- vcov(b); labels <- rownames(v)
  if (is.null(labels)) labels <- names(coef(b))
  grid <- expand.grid(i = seq_along(labels), j = seq_along(labels))
  cov_out[[length(cov_out) + 1]] <<- data.frame(case = case, row = labels[grid$i],
    column = labels[grid$j], value = fmt(v[cbind(grid$i, grid$j)]))
}
designs <- list(taylor = d, raked = dr, jkn = rj)
for (name in names(designs)) {
  des <- designs[[name]]
  # svyby(covmat=TRUE) and svycontrast: differences of domain means and proportions.
  # survey 4.1's svyby(covmat=TRUE) fails on a calibrated design ("number of items to
  # replace"): there the domain means come from svycontrast of the totals (the same
  # linearisation), whose vcov is their joint covariance
  by_g <- function(des, var) {
    if (!identical(des, dr)) return(svyby(as.formula(paste0("~", var)), ~g, des, svymean, covmat = TRUE))
    num <- if (var == "y") "y_" else "s_"
    t <- svytotal(as.formula(paste0("~", num, "a + n_a + ", num, "b + n_b + ", num, "c + n_c")), des)
    svycontrast(t, list(a = parse(text = paste0(num, "a / n_a"))[[1]],
                        b = parse(text = paste0(num, "b / n_b"))[[1]],
                        c = parse(text = paste0(num, "c / n_c"))[[1]]))
  }
  b <- by_g(des, "y")
  add_cov(paste0(name, "_mean_by_g"), b)
  add(paste0(name, "_mean_by_g_contrasts"),
      svycontrast(b, list(a_minus_b = c(1, -1, 0), a_minus_c = c(1, 0, -1), avg_bc = c(0, 0.5, 0.5))))
  p <- by_g(des, "y01")
  add_cov(paste0(name, "_proportion_by_g"), p)
  add(paste0(name, "_proportion_by_g_contrasts"), svycontrast(p, list(a_minus_b = c(1, -1, 0))))
  # periods observed on the same PSUs: the change and its standard error
  pe <- if (identical(des, dr)) {
    t <- svytotal(~I(y * (period == "1404-12")) + I(1 * (period == "1404-12")) +
                    I(y * (period == "1405-01")) + I(1 * (period == "1405-01")), des)
    names(t) <- c("y0", "n0", "y1", "n1")
    svycontrast(t, list(`1404-12` = quote(y0 / n0), `1405-01` = quote(y1 / n1)))
  } else svyby(~y, ~period, des, svymean, covmat = TRUE)
  add_cov(paste0(name, "_mean_by_period"), pe)
  add(paste0(name, "_period_change"), svycontrast(pe, list(change = c(-1, 1))))
  add(paste0(name, "_period_means"), pe)
  # every domain against the whole sample (nonlinear contrast of totals = linearisation)
  t <- svytotal(~y + one + y_a + n_a + y_b + n_b + y_c + n_c + y01 + s_a + s_b + s_c, des,
                return.replicates = inherits(des, "svyrep.design"))
  add(paste0(name, "_mean_vs_overall"), svycontrast(t, list(
    a = quote(y_a / n_a - y / one), b = quote(y_b / n_b - y / one), c = quote(y_c / n_c - y / one))))
  add(paste0(name, "_proportion_vs_overall"), svycontrast(t, list(
    a = quote(s_a / n_a - y01 / one), b = quote(s_b / n_b - y01 / one), c = quote(s_c / n_c - y01 / one))))
  # every region x g domain against its region (a contrast within the region's subset)
  for (r in c("north", "south")) {
    sub <- subset(des, region == r)
    t <- svytotal(~y + one + y_a + n_a + y_b + n_b + y_c + n_c, sub,
                  return.replicates = inherits(des, "svyrep.design"))
    add(paste0(name, "_mean_vs_region_", r), svycontrast(t, list(
      a = quote(y_a / n_a - y / one), b = quote(y_b / n_b - y / one), c = quote(y_c / n_c - y / one))))
  }
}
write.csv(do.call(rbind, out), "contrasts_reference.csv", row.names = FALSE, quote = FALSE)
write.csv(do.call(rbind, cov_out), "contrasts_covariance.csv", row.names = FALSE, quote = FALSE)
cat("periods share PSUs: SE of the change", SE(svycontrast(svyby(~y, ~period, d, svymean, covmat = TRUE), c(-1, 1))),
    "vs independent", sqrt(sum(SE(svyby(~y, ~period, d, svymean))^2)), "\n")
