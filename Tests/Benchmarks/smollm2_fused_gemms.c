// Separate against fused products of a smollm2 training step (2,048 tokens): q, k, v as three GEMMs or
// one of 960 columns; gate and up as two or one of 3,072; forward, input gradient and weight gradient.
//   gcc -O2 Tests/Benchmarks/smollm2_fused_gemms.c -o /tmp/fused_gemms -lopenblas && OPENBLAS_CORETYPE=HASWELL /tmp/fused_gemms
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static float*buf(size_t n){float*p=aligned_alloc(64,n*4+64);for(size_t i=0;i<n;i++)p[i]=(float)(i%13)*0.01f;return p;}
static float *A,*B,*C;
static void g(int ta,int tb,int M,int N,int K,float beta){int lda=ta?M:K, ldb=tb?K:N; cblas_sgemm(CblasRowMajor,ta?CblasTrans:CblasNoTrans,tb?CblasTrans:CblasNoTrans,M,N,K,1,A,lda,B,ldb,beta,C,N);}
int main(){
  A=buf(2048*3072*2);B=buf(3072*2048*2);C=buf(2048*3072*2); int T=2048;
  double sep[6]={0},fus[6]={0};
  for(int r=0;r<12;r++){ double t;
    t=now(); g(0,1,T,576,576,0); g(0,1,T,192,576,0); g(0,1,T,192,576,0); sep[0]+=now()-t;
    t=now(); g(0,1,T,960,576,0); fus[0]+=now()-t;
    t=now(); g(0,0,T,576,576,1); g(0,0,T,576,192,1); g(0,0,T,576,192,1); sep[1]+=now()-t;
    t=now(); g(0,0,T,576,960,1); fus[1]+=now()-t;
    t=now(); g(1,0,576,576,T,1); g(1,0,192,576,T,1); g(1,0,192,576,T,1); sep[2]+=now()-t;
    t=now(); g(1,0,960,576,T,1); fus[2]+=now()-t;
    t=now(); g(0,1,T,1536,576,0); g(0,1,T,1536,576,0); sep[3]+=now()-t;
    t=now(); g(0,1,T,3072,576,0); fus[3]+=now()-t;
    t=now(); g(0,0,T,576,1536,1); g(0,0,T,576,1536,1); sep[4]+=now()-t;
    t=now(); g(0,0,T,576,3072,1); fus[4]+=now()-t;
    t=now(); g(1,0,1536,576,T,1); g(1,0,1536,576,T,1); sep[5]+=now()-t;
    t=now(); g(1,0,3072,576,T,1); fus[5]+=now()-t;
  }
  const char*n[6]={"qkv fwd","qkv dX","qkv dW","gu fwd","gu dX","gu dW"}; double ts=0,tf=0;
  for(int i=0;i<6;i++){printf("%-8s sep %6.2f ms fused %6.2f ms\n",n[i],sep[i]/12*1e3,fus[i]/12*1e3); ts+=sep[i]; tf+=fus[i];}
  printf("per layer: sep %.1f ms fused %.1f ms -> x30 layers: %.2f s saved\n", ts/12*1e3, tf/12*1e3, (ts-tf)/12*30);
}
